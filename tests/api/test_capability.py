"""GET /fhir/metadata: a CapabilityStatement generated from what is routed."""

from __future__ import annotations

import httpx

from fhir_server.fhir import registry

# One request per interaction code, none of which may be answered "405 not routed".
PROBES = {
    "read": ("GET", "/fhir/Patient/p"),
    "vread": ("GET", "/fhir/Patient/p/_history/1"),
    "update": ("PUT", "/fhir/Patient/p"),
    "patch": ("PATCH", "/fhir/Patient/p"),
    "delete": ("DELETE", "/fhir/Patient/p"),
    "history-instance": ("GET", "/fhir/Patient/p/_history"),
    "history-type": ("GET", "/fhir/Patient/_history"),
    "create": ("POST", "/fhir/Patient"),
    "search-type": ("GET", "/fhir/Patient"),
    "history-system": ("GET", "/fhir/_history"),
    "transaction": ("POST", "/fhir"),
    "batch": ("POST", "/fhir"),
    "search-system": ("GET", "/fhir?_id=p"),
}


async def test_metadata_is_an_r4_capability_statement(client: httpx.AsyncClient) -> None:
    response = await client.get("/fhir/metadata")
    assert response.status_code == 200
    statement = response.json()
    assert statement["resourceType"] == "CapabilityStatement"
    assert statement["fhirVersion"] == "4.0.1"
    assert statement["kind"] == "instance"
    assert "application/fhir+json" in statement["format"]
    assert statement["implementation"]["url"] == "http://test/fhir"
    assert registry.validate(statement) == []


async def test_metadata_lists_every_r4_type_once(client: httpx.AsyncClient) -> None:
    resources = (await client.get("/fhir/metadata")).json()["rest"][0]["resource"]
    types = [r["type"] for r in resources]
    assert sorted(types) == sorted(registry.RESOURCE_TYPES)
    assert len(types) == len(set(types))


async def test_every_listed_interaction_is_routed(client: httpx.AsyncClient) -> None:
    rest = (await client.get("/fhir/metadata")).json()["rest"][0]
    codes = {i["code"] for r in rest["resource"] for i in r["interaction"]} | {i["code"] for i in rest["interaction"]}
    assert {"read", "vread", "update", "delete", "create", "history-instance", "history-type",
            "history-system"} <= codes
    for code in codes:
        method, path = PROBES[code]
        response = await client.request(method, path, content=b"{}", headers={"Content-Type": "application/json"})
        assert response.status_code != 405, (code, response.text)


async def test_every_type_offers_the_same_interactions(client: httpx.AsyncClient) -> None:
    resources = (await client.get("/fhir/metadata")).json()["rest"][0]["resource"]
    first = [i["code"] for i in resources[0]["interaction"]]
    assert all([i["code"] for i in r["interaction"]] == first for r in resources)
