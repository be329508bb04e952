"""$validate over HTTP and meta.profile enforcement on writes, against the ASCMI profiles the server loads."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from fhir_server.settings import Settings

BASE = "https://ascmi.example.org/fhir"
PATIENT_PROFILE = f"{BASE}/StructureDefinition/ASCMIPatient"
CONSENT = {"resourceType": "Consent", "status": "active", "scope": {"text": "privacy"}, "category": [{"text": "x"}]}


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path, auth="off", load_conformance=True)


async def test_validate_reports_base_invariants_with_a_location(client: httpx.AsyncClient) -> None:
    response = await client.post("/fhir/Consent/$validate", json=CONSENT)
    assert response.status_code == 200
    issues = response.json()["issue"]
    assert any(i["severity"] == "error" and "ppc-1" in i["diagnostics"] for i in issues)


async def test_validate_against_a_held_profile_names_each_missing_element(client: httpx.AsyncClient) -> None:
    response = await client.post(f"/fhir/Patient/$validate?profile={PATIENT_PROFILE}",
                                 json={"resourceType": "Patient"})
    assert response.status_code == 200
    expressions = {e for i in response.json()["issue"] for e in i.get("expression", [])}
    assert {"Patient.name", "Patient.birthDate"} <= expressions


async def test_validate_accepts_parameters_with_resource_and_profile(client: httpx.AsyncClient) -> None:
    params = {"resourceType": "Parameters", "parameter": [
        {"name": "resource", "resource": {"resourceType": "Patient", "name": [{"family": "Ruiz"}],
                                          "birthDate": "1990-04-01"}},
        {"name": "profile", "valueUri": PATIENT_PROFILE}]}
    response = await client.post("/fhir/Patient/$validate", json=params)
    assert response.status_code == 200
    assert all(i["severity"] != "error" for i in response.json()["issue"]), response.json()


async def test_validate_with_an_unknown_mode_is_rejected(client: httpx.AsyncClient) -> None:
    response = await client.post("/fhir/Patient/$validate?mode=sideways", json={"resourceType": "Patient"})
    assert response.status_code == 400
    assert response.json()["issue"][0]["code"] == "invalid"


async def test_create_enforces_a_known_meta_profile_with_422(client: httpx.AsyncClient) -> None:
    patient = {"resourceType": "Patient", "meta": {"profile": [PATIENT_PROFILE]}}
    response = await client.post("/fhir/Patient", json=patient)
    assert response.status_code == 422
    assert response.json()["issue"][0]["code"] == "required"
    assert (await client.get("/fhir/Patient/_history")).json().get("total") == 0


async def test_create_with_an_unknown_meta_profile_is_stored_with_a_warning(client: httpx.AsyncClient) -> None:
    response = await client.post("/fhir/Patient", json={"resourceType": "Patient",
                                                        "meta": {"profile": ["http://example.org/nope"]}},
                                 headers={"Prefer": "return=OperationOutcome"})
    assert response.status_code == 201
    warnings = [i for i in response.json()["issue"] if i["severity"] == "warning"]
    assert warnings and "http://example.org/nope" in warnings[0]["diagnostics"]


async def test_profiles_and_network_are_stored_resources_after_start(client: httpx.AsyncClient) -> None:
    sd = await client.get("/fhir/StructureDefinition/ASCMIConsent")
    network = await client.get("/fhir/Organization/ascmi-care-partner-network")
    assert sd.status_code == 200 and sd.json()["url"] == f"{BASE}/StructureDefinition/ASCMIConsent"
    assert network.status_code == 200


QUESTIONNAIRE = {"resourceType": "Questionnaire", "url": "urn:example:q:intake", "version": "1", "status": "active",
                 "item": [{"linkId": "age", "type": "integer", "required": True}]}


async def test_validate_checks_a_response_against_the_stored_questionnaire(client: httpx.AsyncClient) -> None:
    qr = {"resourceType": "QuestionnaireResponse", "questionnaire": "urn:example:q:intake|1", "status": "completed",
          "item": [{"linkId": "age", "answer": [{"valueString": "forty"}]}]}
    before = (await client.post("/fhir/QuestionnaireResponse/$validate", json=qr)).json()["issue"]
    assert [i["severity"] for i in before if "could not be resolved" in i["diagnostics"]] == ["warning"]
    assert (await client.post("/fhir/Questionnaire", json=QUESTIONNAIRE)).status_code == 201
    after = (await client.post("/fhir/QuestionnaireResponse/$validate", json=qr)).json()["issue"]
    assert [(i["severity"], i["expression"]) for i in after if i["severity"] == "error"] == [
        ("error", ["QuestionnaireResponse.item[0].answer[0].value.ofType(string)"])]
    del qr["item"]  # ("item": [] would be an error of its own: an empty JSON array)
    missing = (await client.post("/fhir/QuestionnaireResponse/$validate", json=qr)).json()["issue"]
    assert [i["diagnostics"] for i in missing if i["severity"] == "error"] == [
        "No response answer found for required item with linkId 'age'"]
