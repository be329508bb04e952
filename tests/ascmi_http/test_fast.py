"""FAST Consent operations: ``Consent/$fileConsent`` and ``Consent/$revokeConsent`` (fhir_server/api/fast.py)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from tests.ascmi_http.support import consent_ref, example, get, issues, post_form, search, total

PDF = "JVBERi0xLjQKJSVFT0YK"  # "%PDF-1.4\n%%EOF\n"


def _today() -> str:
    return datetime.now(ZoneInfo("America/Los_Angeles")).date().isoformat()


def _yesterday() -> str:
    return (datetime.now(ZoneInfo("America/Los_Angeles")).date() - timedelta(days=1)).isoformat()


async def _patient(client: httpx.AsyncClient) -> str:
    response = await client.post("/fhir/Patient", json={
        "resourceType": "Patient", "identifier": [{"system": "urn:mrn", "value": "M1"}],
        "name": [{"family": "Ruiz", "given": ["Ana"]}], "birthDate": "1990-04-01"})
    assert response.status_code == 201, response.text
    return f"Patient/{response.json()['id']}"


def _consent(patient: str, **extra: Any) -> dict[str, Any]:
    return {"resourceType": "Consent", "status": "active",
            "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope",
                                  "code": "patient-privacy"}]},
            "category": [{"coding": [{"system": "http://loinc.org", "code": "64292-6"}]}],
            "patient": {"reference": patient}, "dateTime": "2025-03-01",
            "policyRule": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                                       "code": "OPTIN"}]},
            "provision": {"type": "permit", "period": {"start": "2025-03-01"}}, **extra}


def _document(patient: str) -> dict[str, Any]:
    return {"resourceType": "DocumentReference", "status": "current", "subject": {"reference": patient},
            "content": [{"attachment": {"contentType": "application/pdf", "data": PDF}}]}


def _file_params(consent: dict[str, Any], document: dict[str, Any] | None = None) -> dict[str, Any]:
    params = [{"name": "consent", "resource": consent}]
    if document:
        params.append({"name": "document", "resource": document})
    return {"resourceType": "Parameters", "parameter": params}


def _revoke_params(consent: str, patient: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "Parameters", "parameter": [
        {"name": "consent", "valueReference": {"reference": consent}},
        {"name": "patient", "valueReference": patient}]}


async def _file(client: httpx.AsyncClient, body: dict[str, Any]) -> str:
    response = await client.post("/fhir/Consent/$fileConsent", json=body)
    assert response.status_code == 201, response.text
    assert issues(response)[0]["severity"] == "information"
    return consent_ref(response)


async def test_file_consent_stores_the_consent_and_its_document_in_one_transaction(client: httpx.AsyncClient
                                                                                    ) -> None:
    patient = await _patient(client)
    consent = await get(client, await _file(client, _file_params(_consent(patient), _document(patient))))
    document = await get(client, consent["sourceReference"]["reference"])
    assert document["resourceType"] == "DocumentReference" and document["subject"]["reference"] == patient
    assert consent["status"] == "active" and consent["patient"]["reference"] == patient


async def test_file_consent_accepts_the_consent_itself_as_body(client: httpx.AsyncClient) -> None:
    patient = await _patient(client)
    consent = await get(client, await _file(client, _consent(patient)))
    assert consent["meta"]["versionId"] == "1"


async def test_an_ascmi_consent_filed_with_fast_supersedes_the_older_form(client: httpx.AsyncClient) -> None:
    form = await post_form(client, example("non-ab133-mixed"))  # signed 2025-03-14
    newer = {k: v for k, v in (await get(client, consent_ref(form))).items() if k not in ("id", "meta", "identifier")}
    newer["dateTime"] = "2025-05-01"
    newer["provision"]["period"] = {"start": "2025-05-01"}
    filed = await _file(client, _file_params(newer))
    older = await get(client, consent_ref(form))
    assert older["status"] == "inactive" and older["provision"]["period"]["end"] == "2025-04-30"
    assert (await get(client, filed))["status"] == "active"
    assert any("superseded" in r.get("text", "") for p in await search(client, f"Provenance?target={consent_ref(form)}")
               for r in p.get("reason", []))


async def test_an_older_ascmi_consent_filed_with_fast_is_stored_superseded(client: httpx.AsyncClient) -> None:
    form = await post_form(client, example("non-ab133-mixed"))  # signed 2025-03-14
    older = {k: v for k, v in (await get(client, consent_ref(form))).items() if k not in ("id", "meta", "identifier")}
    older["dateTime"] = "2025-01-10"
    older["provision"]["period"] = {"start": "2025-01-10"}
    filed = await get(client, await _file(client, older))
    assert filed["status"] == "inactive" and filed["provision"]["period"]["end"] == "2025-03-13"
    assert (await get(client, consent_ref(form)))["status"] == "active"


async def test_file_consent_refuses_bad_parameters_and_stores_nothing(client: httpx.AsyncClient) -> None:
    patient = await _patient(client)
    before = await total(client)
    bad = [
        ({"resourceType": "Parameters", "parameter": []}, 400, "required"),
        ({"resourceType": "Patient"}, 400, None),
        (_file_params({"resourceType": "Patient"}), 400, None),
        (_file_params(_consent(patient), {"resourceType": "Observation"}), 400, None),
        (_file_params({k: v for k, v in _consent(patient).items() if k != "status"}), None, None),
        (_file_params(_consent("Patient/nobody")), None, None),
    ]
    for body, status, code in bad:
        response = await client.post("/fhir/Consent/$fileConsent", json=body)
        assert 400 <= response.status_code < 500 and response.status_code == (status or response.status_code), \
            response.text
        if code:
            assert issues(response)[0]["code"] == code
    assert await total(client) == before


async def test_revoke_consent_sets_it_inactive_with_a_period_end_and_a_provenance(client: httpx.AsyncClient
                                                                                   ) -> None:
    patient = await _patient(client)
    consent = await _file(client, _consent(patient))
    response = await client.post("/fhir/Consent/$revokeConsent",
                                 json=_revoke_params(consent, {"reference": patient}))
    assert response.status_code == 200, response.text
    assert response.headers["location"].endswith(f"{consent}/_history/2")
    revoked = await get(client, consent)
    assert revoked["status"] == "inactive" and revoked["provision"]["period"]["end"] == _yesterday()
    history = (await client.get(f"/fhir/{consent}/_history")).json()
    assert sorted(e["resource"]["status"] for e in history["entry"]) == ["active", "inactive"]
    provenance = await search(client, f"Provenance?target={consent}")
    assert [p["occurredDateTime"] for p in provenance] == [_today()]


async def test_revoke_consent_finds_the_patient_by_identifier_and_keeps_a_document(client: httpx.AsyncClient
                                                                                    ) -> None:
    patient = await _patient(client)
    consent = await _file(client, _consent(patient))
    params = _revoke_params(consent, {"identifier": {"system": "urn:mrn", "value": "M1"}})
    params["parameter"].append({"name": "document", "resource": _document(patient)})
    response = await client.post("/fhir/Consent/$revokeConsent", json=params)
    assert response.status_code == 200, response.text
    (provenance,) = await search(client, f"Provenance?target={consent}")
    assert (await get(client, provenance["entity"][0]["what"]["reference"]))["resourceType"] == "DocumentReference"


async def test_revoke_consent_refusals(client: httpx.AsyncClient) -> None:
    patient = await _patient(client)
    consent = await _file(client, _consent(patient))
    before = await total(client)
    cases = [
        (_revoke_params("Consent/nobody", {"reference": patient}), 404, "not-found"),
        (_revoke_params(consent, {"reference": "Patient/someone-else"}), 422, None),
        (_revoke_params(consent, {"identifier": {"system": "urn:mrn", "value": "M2"}}), 422, None),
        ({"resourceType": "Parameters", "parameter": [{"name": "consent", "valueReference": {"reference": consent}}]},
         400, "required"),
        (_revoke_params("Patient/1", {"reference": patient}), 400, None),
    ]
    for body, status, code in cases:
        response = await client.post("/fhir/Consent/$revokeConsent", json=body)
        assert response.status_code == status, (body, response.text)
        if code:
            assert issues(response)[0]["code"] == code
    assert await total(client) == before
    ok = await client.post("/fhir/Consent/$revokeConsent", json=_revoke_params(consent, {"reference": patient}))
    assert ok.status_code == 200
    again = await client.post("/fhir/Consent/$revokeConsent", json=_revoke_params(consent, {"reference": patient}))
    assert again.status_code == 409 and issues(again)[0]["code"] == "conflict"


async def test_an_ascmi_form_revoked_with_fast_is_not_revocable_again_by_form(client: httpx.AsyncClient) -> None:
    form = await post_form(client, example("ab133-all-share"))
    consent = await get(client, consent_ref(form))
    response = await client.post("/fhir/Consent/$revokeConsent",
                                 json=_revoke_params(consent_ref(form), consent["patient"]))
    assert response.status_code == 200, response.text
    again = await client.post("/ascmi/revocations", json=example("revoke-by-form-id"))
    assert again.status_code == 409


async def test_the_capability_statement_lists_the_fast_operations(client: httpx.AsyncClient) -> None:
    statement = (await client.get("/fhir/metadata")).json()
    consent = next(r for r in statement["rest"][0]["resource"] if r["type"] == "Consent")
    assert {"fileConsent", "revokeConsent"} <= {o["name"] for o in consent.get("operation", [])}
