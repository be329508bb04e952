"""The profile, the extension, the OperationDefinition and the Task period SearchParameter are loaded at
start-up, served, named by the CapabilityStatement and used by $validate."""

from __future__ import annotations

import copy

import httpx
import pytest

from tests.confidential_http.support import BASE, consent_ref, example, get, issues, post_request

PROFILE = f"{BASE}/StructureDefinition/ASCMIConfidentialCommunication"


@pytest.mark.parametrize("ref", [
    "StructureDefinition/ASCMIConfidentialCommunication",
    "StructureDefinition/designated-contact",
    "OperationDefinition/communication-contact",
    "SearchParameter/Task-period",
    "ValueSet/ascmi-sensitive-services",
    "CodeSystem/ascmi-communication-kind",
])
async def test_the_conformance_resources_are_served(client: httpx.AsyncClient, ref: str) -> None:
    resource = await get(client, ref)
    assert resource["url"] == f"{BASE}/{ref}"
    if resource["resourceType"] == "StructureDefinition":
        assert resource["snapshot"]["element"]


async def test_the_capability_statement_names_the_operation(client: httpx.AsyncClient) -> None:
    statement = (await client.get("/fhir/metadata")).json()
    patient = next(r for r in statement["rest"][0]["resource"] if r["type"] == "Patient")
    assert {"name": "communication-contact", "definition": f"{BASE}/OperationDefinition/communication-contact"} \
        in patient["operation"]


async def _errors(client: httpx.AsyncClient, consent: dict) -> list[dict]:
    checked = await client.post("/fhir/Consent/$validate", params={"profile": PROFILE}, json=consent)
    assert checked.status_code == 200, checked.text
    return [i for i in issues(checked) if i["severity"] in ("error", "fatal")]


async def test_validate_accepts_a_stored_request_and_names_what_a_broken_one_lacks(client: httpx.AsyncClient) -> None:
    consent = await get(client, consent_ref(await post_request(client, example("phone"))))
    assert await _errors(client, consent) == []
    no_contact = copy.deepcopy(consent)
    del no_contact["extension"]
    assert any("Consent.extension" in " ".join(i.get("expression", [])) + i["diagnostics"]
               for i in await _errors(client, no_contact))
    wrong_category = copy.deepcopy(consent)
    wrong_category["category"] = wrong_category["category"][1:]
    assert await _errors(client, wrong_category)
    bad_value = copy.deepcopy(consent)
    bad_value["extension"][0] = {"url": f"{BASE}/StructureDefinition/designated-contact", "valueString": "call me"}
    assert await _errors(client, bad_value)
    permit = copy.deepcopy(consent)
    permit["provision"]["type"] = "permit"
    assert await _errors(client, permit)


async def test_a_write_claiming_the_profile_is_checked_against_it(client: httpx.AsyncClient) -> None:
    consent = await get(client, consent_ref(await post_request(client, example("phone"))))
    del consent["extension"]
    response = await client.put(f"/fhir/Consent/{consent['id']}", json=consent)
    assert response.status_code == 422
