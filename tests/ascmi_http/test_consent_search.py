"""The server's own Consent search parameters reach the nested provisions where ASCMI forms record choices
(R4's actor/purpose/security-label only look at the root provision)."""

from __future__ import annotations

import httpx

from tests.ascmi_http.support import example, post_form

ACT = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
REASON = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
NETWORK = "Organization/ascmi-care-partner-network"


async def _ids(client: httpx.AsyncClient, query: str) -> set[str]:
    response = await client.get(f"/fhir/Consent?{query}")
    assert response.status_code == 200, response.text
    return {e["resource"]["id"] for e in response.json().get("entry", [])}


async def test_nested_provision_parameters_find_the_consents_that_name_them(client: httpx.AsyncClient) -> None:
    shares = (await post_form(client, example("ab133-all-share"))).headers["location"].split("/")[-3]
    nothing = (await post_form(client, example("share-nothing"))).headers["location"].split("/")[-3]
    assert await _ids(client, f"provision-actor={NETWORK}&provision-purpose={REASON}|TREAT") == {shares}
    assert await _ids(client, f"actor={NETWORK}") == set()  # R4's parameter: the root provision only
    assert nothing in await _ids(client, f"provision-type=deny&provision-security-label={ACT}|HIV")
    assert shares in await _ids(client, f"provision-type=permit&provision-security-label={ACT}|HIV")
    assert nothing not in await _ids(client, "provision-type=permit")


async def test_the_parameters_are_published_as_search_parameter_resources(client: httpx.AsyncClient) -> None:
    bundle = (await client.get("/fhir/SearchParameter?base=Consent&code=provision-actor")).json()
    assert bundle["total"] == 1
    statement = (await client.get("/fhir/metadata")).json()
    consent = next(r for r in statement["rest"][0]["resource"] if r["type"] == "Consent")
    assert "provision-actor" in {p["name"] for p in consent["searchParam"]}
