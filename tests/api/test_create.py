"""create (http.html#create): server-assigned id, 201, Location, ETag, Last-Modified, server-owned meta."""

from __future__ import annotations

import re

import httpx

from fhir_server.fhir import registry
from tests.api.support import patient

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
INSTANT = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")


async def test_create_returns_201_with_location_etag_and_last_modified(client: httpx.AsyncClient) -> None:
    response = await client.post("/fhir/Patient", json=patient())
    assert response.status_code == 201
    body = response.json()
    assert UUID.match(body["id"])
    assert response.headers["location"] == f"http://test/fhir/Patient/{body['id']}/_history/1"
    assert response.headers["etag"] == 'W/"1"'
    assert response.headers["last-modified"].endswith(" GMT")
    assert response.headers["content-type"].startswith("application/fhir+json")
    assert body["meta"]["versionId"] == "1"
    assert INSTANT.match(body["meta"]["lastUpdated"])


async def test_create_replaces_client_meta_version_and_last_updated_but_keeps_tags(
        client: httpx.AsyncClient) -> None:
    tag = {"system": "http://example.org/tags", "code": "vip"}
    sent = patient(meta={"versionId": "7", "lastUpdated": "2001-01-01T00:00:00Z", "tag": [tag]})
    body = (await client.post("/fhir/Patient", json=sent)).json()
    assert body["meta"]["versionId"] == "1"
    assert body["meta"]["lastUpdated"] != "2001-01-01T00:00:00Z"
    assert INSTANT.match(body["meta"]["lastUpdated"])
    assert body["meta"]["tag"] == [tag]


async def test_create_ignores_a_client_supplied_id(client: httpx.AsyncClient) -> None:
    response = await client.post("/fhir/Patient", json=patient(id="chosen-by-client"))
    assert response.status_code == 201
    assert response.json()["id"] != "chosen-by-client"
    assert (await client.get("/fhir/Patient/chosen-by-client")).status_code == 404


async def test_created_resource_reads_back_identically(client: httpx.AsyncClient) -> None:
    created = await client.post("/fhir/Patient", json=patient(name=[{"family": "Zoë", "given": ["Ана"]}]))
    read = await client.get(f"/fhir/Patient/{created.json()['id']}")
    assert read.status_code == 200
    assert read.content == created.content


def test_the_registry_knows_every_r4_resource_type() -> None:
    assert len(registry.RESOURCE_TYPES) >= 145
    for name in ("Patient", "Consent", "Bundle", "Binary", "Parameters", "SubstancePolymer",
                 "MedicinalProduct", "EffectEvidenceSynthesis", "CatalogEntry"):
        assert registry.is_resource_type(name), name
    assert not registry.is_resource_type("Resource")
    assert not registry.is_resource_type("DomainResource")


async def test_every_r4_type_is_accepted_and_validated_on_create(client: httpx.AsyncClient) -> None:
    """An empty resource is created when the type has no required elements, else 400 naming what is missing;
    422 (invariant) when an invariant of its base definition needs content (Organization org-1: a name or an
    identifier).

    One app for all types (a loop, not parametrisation): app start-up dominates the cost of 147 cases.
    """
    wrong: list[str] = []
    for rtype in sorted(registry.RESOURCE_TYPES):
        response = await client.post(f"/fhir/{rtype}", json={"resourceType": rtype})
        body = response.json()
        if registry.required_elements(rtype):
            issue = body["issue"][0] if body["resourceType"] == "OperationOutcome" else {}
            ok = (response.status_code == 400 and issue.get("code") == "required"
                  and issue["expression"][0].startswith(f"{rtype}."))
        elif response.status_code == 422:
            ok = body["issue"][0]["code"] == "invariant" and body["issue"][0]["expression"][0] == rtype
        else:
            ok = response.status_code == 201 and body["resourceType"] == rtype
        if not ok:
            wrong.append(f"{rtype}: {response.status_code} {response.text[:200]}")
    assert wrong == []
