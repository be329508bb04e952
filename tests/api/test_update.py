"""update (http.html#update): new versions, update-as-create, If-Match (versioned update)."""

from __future__ import annotations

import httpx
import pytest

from tests.api.support import assert_outcome, create, patient


async def test_update_creates_a_new_version(client: httpx.AsyncClient) -> None:
    rid = (await create(client))["id"]
    response = await client.put(f"/fhir/Patient/{rid}", json=patient(id=rid, gender="male"))
    assert response.status_code == 200
    assert response.headers["etag"] == 'W/"2"'
    assert response.headers["location"].endswith(f"/fhir/Patient/{rid}/_history/2")
    body = response.json()
    assert (body["meta"]["versionId"], body["gender"]) == ("2", "male")
    assert (await client.get(f"/fhir/Patient/{rid}")).json() == body


async def test_update_with_a_new_client_id_creates_the_resource(client: httpx.AsyncClient) -> None:
    response = await client.put("/fhir/Patient/client-chosen", json=patient(id="client-chosen"))
    assert response.status_code == 201
    assert response.headers["etag"] == 'W/"1"'
    assert response.json()["id"] == "client-chosen"
    assert (await client.get("/fhir/Patient/client-chosen")).status_code == 200


async def test_update_of_a_deleted_resource_revives_it_as_the_next_version(client: httpx.AsyncClient) -> None:
    rid = (await create(client))["id"]
    await client.delete(f"/fhir/Patient/{rid}")
    response = await client.put(f"/fhir/Patient/{rid}", json=patient(id=rid))
    assert response.status_code == 201
    assert response.json()["meta"]["versionId"] == "3"


async def test_update_ignores_client_meta_version_and_last_updated(client: httpx.AsyncClient) -> None:
    rid = (await create(client))["id"]
    sent = patient(id=rid, meta={"versionId": "99", "lastUpdated": "1999-01-01T00:00:00Z"})
    body = (await client.put(f"/fhir/Patient/{rid}", json=sent)).json()
    assert body["meta"]["versionId"] == "2"
    assert not body["meta"]["lastUpdated"].startswith("1999")


@pytest.mark.parametrize("if_match", ['W/"1"', '"1"', "1"])
async def test_update_with_matching_if_match_succeeds(client: httpx.AsyncClient, if_match: str) -> None:
    rid = (await create(client))["id"]
    response = await client.put(f"/fhir/Patient/{rid}", json=patient(id=rid), headers={"If-Match": if_match})
    assert response.status_code == 200


async def test_update_with_stale_if_match_returns_412(client: httpx.AsyncClient) -> None:
    rid = (await create(client))["id"]
    await client.put(f"/fhir/Patient/{rid}", json=patient(id=rid))
    response = await client.put(f"/fhir/Patient/{rid}", json=patient(id=rid), headers={"If-Match": 'W/"1"'})
    assert_outcome(response, 412, "conflict")
    assert (await client.get(f"/fhir/Patient/{rid}")).json()["meta"]["versionId"] == "2"


async def test_update_with_if_match_on_a_missing_resource_returns_412(client: httpx.AsyncClient) -> None:
    response = await client.put("/fhir/Patient/new", json=patient(id="new"), headers={"If-Match": 'W/"1"'})
    assert_outcome(response, 412, "conflict")
    assert (await client.get("/fhir/Patient/new")).status_code == 404


async def test_failed_update_leaves_no_trace(client: httpx.AsyncClient) -> None:
    rid = (await create(client))["id"]
    bad = await client.put(f"/fhir/Patient/{rid}", json=patient(id=rid, gender="unknown-gender"))
    assert bad.status_code == 400
    history = (await client.get(f"/fhir/Patient/{rid}/_history")).json()
    assert history["total"] == 1
