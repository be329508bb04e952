"""delete (http.html#delete): a deletion is a version; reads then say 410; deleting again is a no-op."""

from __future__ import annotations

import httpx

from tests.api.support import assert_outcome, create


async def test_delete_returns_200_with_an_outcome_and_the_deletion_etag(client: httpx.AsyncClient) -> None:
    rid = (await create(client))["id"]
    response = await client.delete(f"/fhir/Patient/{rid}")
    assert_outcome(response, 200, "informational")
    assert response.headers["etag"] == 'W/"2"'


async def test_read_after_delete_returns_410(client: httpx.AsyncClient) -> None:
    rid = (await create(client))["id"]
    await client.delete(f"/fhir/Patient/{rid}")
    assert_outcome(await client.get(f"/fhir/Patient/{rid}"), 410, "deleted")


async def test_delete_of_a_deleted_resource_is_idempotent(client: httpx.AsyncClient) -> None:
    rid = (await create(client))["id"]
    await client.delete(f"/fhir/Patient/{rid}")
    again = await client.delete(f"/fhir/Patient/{rid}")
    assert_outcome(again, 200, "informational")
    history = (await client.get(f"/fhir/Patient/{rid}/_history")).json()
    assert history["total"] == 2  # the second delete wrote nothing


async def test_delete_of_an_unknown_resource_is_200(client: httpx.AsyncClient) -> None:
    assert_outcome(await client.delete("/fhir/Patient/never-was"), 200, "informational")


async def test_delete_with_stale_if_match_returns_412(client: httpx.AsyncClient) -> None:
    rid = (await create(client))["id"]
    assert_outcome(await client.delete(f"/fhir/Patient/{rid}", headers={"If-Match": 'W/"2"'}), 412, "conflict")
    assert (await client.get(f"/fhir/Patient/{rid}")).status_code == 200
    ok = await client.delete(f"/fhir/Patient/{rid}", headers={"If-Match": 'W/"1"'})
    assert ok.status_code == 200


async def test_delete_of_unknown_type_returns_404(client: httpx.AsyncClient) -> None:
    assert_outcome(await client.delete("/fhir/Frobnicator/1"), 404, "not-supported")
