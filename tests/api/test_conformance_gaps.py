"""Standard behaviours a new user tries first (issue #17): terminology, one issue per cause, includes in the
CapabilityStatement, token search on code elements, base invariants on write."""

from __future__ import annotations

from typing import Any

import httpx

from tests.api.support import assert_outcome, create

SCOPE = "http://terminology.hl7.org/CodeSystem/consentscope"
GENDER = "http://hl7.org/fhir/administrative-gender"


def consent(**fields: Any) -> dict[str, Any]:
    return {"resourceType": "Consent", "status": "active",
            "scope": {"coding": [{"system": SCOPE, "code": "patient-privacy"}]},
            "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
            "policyRule": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                                       "code": "OPTIN"}]}, **fields}


async def _validate(client: httpx.AsyncClient, resource: dict[str, Any]) -> list[dict[str, Any]]:
    response = await client.post(f"/fhir/{resource['resourceType']}/$validate", json=resource)
    assert response.status_code == 200, response.text
    return [i for i in response.json()["issue"] if i["severity"] in ("error", "fatal")]


async def test_unknown_code_in_a_complete_code_system_is_an_error_whatever_the_binding(
        client: httpx.AsyncClient) -> None:
    # Consent.scope is bound *extensible*: an unknown code of a known complete code system is still an error.
    errors = await _validate(client, consent(scope={"coding": [{"system": SCOPE, "code": "bogus"}]}))
    assert [(e["code"], e["expression"]) for e in errors] == [("code-invalid", ["Consent.scope.coding[0]"])]
    assert "bogus" in errors[0]["diagnostics"] and SCOPE in errors[0]["diagnostics"]


async def test_known_code_of_a_complete_code_system_passes(client: httpx.AsyncClient) -> None:
    assert await _validate(client, consent()) == []


async def test_a_missing_required_element_is_reported_once(client: httpx.AsyncClient) -> None:
    body = consent()
    del body["status"]
    errors = await _validate(client, body)
    assert [(e["code"], e["expression"]) for e in errors] == [("required", ["Consent.status"])]


async def test_capability_statement_lists_includes_and_revincludes_per_type(client: httpx.AsyncClient) -> None:
    resources = {r["type"]: r for r in (await client.get("/fhir/metadata")).json()["rest"][0]["resource"]}
    assert {"Consent:*", "Consent:patient", "Consent:actor"} <= set(resources["Consent"]["searchInclude"])
    assert {"Consent:patient", "Observation:subject"} <= set(resources["Patient"]["searchRevInclude"])
    assert all("searchInclude" in r for r in resources.values())
    for value in resources["Consent"]["searchInclude"]:  # every advertised include is accepted
        response = await client.get(f"/fhir/Consent?_include={value}", headers={"Prefer": "handling=strict"})
        assert response.status_code == 200, (value, response.text)


async def test_token_search_on_a_code_element_matches_the_bound_system(client: httpx.AsyncClient) -> None:
    male = await create(client, {"resourceType": "Patient", "gender": "male"})
    await create(client, {"resourceType": "Patient", "gender": "female"})

    async def ids(query: str) -> list[str]:
        response = await client.get(f"/fhir/Patient?{query}")
        assert response.status_code == 200, response.text
        return [e["resource"]["id"] for e in response.json().get("entry", [])]

    assert await ids(f"gender={GENDER}|male") == [male["id"]]
    assert await ids("gender=male") == [male["id"]]
    assert await ids("gender=http://example.org/other|male") == []
    assert await ids(f"gender:not={GENDER}|female") == [male["id"]]


async def test_a_consent_breaking_a_base_invariant_is_refused_with_422(client: httpx.AsyncClient) -> None:
    body = consent()
    del body["policyRule"]  # ppc-1: either a policy or a policyRule
    issue = assert_outcome(await client.post("/fhir/Consent", json=body), 422, "invariant")
    assert "ppc-1" in issue["diagnostics"] and issue["expression"] == ["Consent"]
    assert_outcome(await client.put("/fhir/Consent/c1", json={**body, "id": "c1"}), 422, "invariant")
    bundle = {"resourceType": "Bundle", "type": "transaction",
              "entry": [{"request": {"method": "POST", "url": "Consent"}, "resource": body}]}
    assert (await client.post("/fhir", json=bundle)).status_code == 422
    assert (await client.get("/fhir/Consent")).json().get("total", 0) == 0  # nothing was stored
    with_policy = {**body, "policy": [{"uri": "https://example.org/policy"}]}
    assert (await client.post("/fhir/Consent", json=with_policy)).status_code == 201


async def test_invariants_of_backbone_elements_are_enforced_too(client: httpx.AsyncClient) -> None:
    # pat-1: a contact SHALL have a name, an address, a telecom or an organization
    response = await client.post("/fhir/Patient", json={"resourceType": "Patient",
                                                         "contact": [{"gender": "male"}]})
    issue = assert_outcome(response, 422, "invariant")
    assert "pat-1" in issue["diagnostics"] and issue["expression"] == ["Patient.contact"]
