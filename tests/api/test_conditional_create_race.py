"""Conditional create is atomic: N concurrent identical requests create ONE resource (FHIR R4 http.html#ccreate).

The losers answer like a request that came second: 200 with the existing resource, never a 412/409/500 that
leaks the race. Covered for ``If-None-Exist`` on ``POST [type]``, ``request.ifNoneExist`` in transaction and batch
Bundles, on both stores (the MongoDB leg runs on a real SecantusDB process, whose snapshot transactions do not
serialise the condition's search by themselves). The rule for later creates: the condition is evaluated again
every time, so a deleted match, or one updated so that it no longer matches, does not block a new create.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import httpx

from tests.api.support import patient

N = 8
SYSTEM = "urn:race"


async def _patients(client: httpx.AsyncClient, value: str) -> list[dict[str, Any]]:
    found = await client.get("/fhir/Patient", params={"identifier": f"{SYSTEM}|{value}"})
    assert found.status_code == 200, found.text
    return [e["resource"] for e in found.json().get("entry", []) if e["search"]["mode"] == "match"]


def _conditional_post(client: httpx.AsyncClient, value: str) -> Any:
    return client.post("/fhir/Patient", json=patient(identifier=[{"system": SYSTEM, "value": value}]),
                       headers={"If-None-Exist": f"identifier={SYSTEM}|{value}"})


async def test_concurrent_if_none_exist_creates_one_resource(client: httpx.AsyncClient) -> None:
    for round_ in range(3):
        value = f"header-{round_}"
        responses = await asyncio.gather(*(_conditional_post(client, value) for _ in range(N)))
        assert sorted(r.status_code for r in responses) == [200] * (N - 1) + [201], [r.text for r in responses]
        stored = await _patients(client, value)
        assert len(stored) == 1
        assert {r.json()["id"] for r in responses} == {stored[0]["id"]}
        assert stored[0]["meta"]["versionId"] == "1"


def _transaction(value: str, i: int) -> dict[str, Any]:
    """A Patient by conditional create and an Observation that refers to it by its temporary id."""
    return {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": "urn:uuid:0b8f3c1e-0000-4000-8000-000000000001",
         "resource": patient(identifier=[{"system": SYSTEM, "value": value}]),
         "request": {"method": "POST", "url": "Patient", "ifNoneExist": f"identifier={SYSTEM}|{value}"}},
        {"resource": {"resourceType": "Observation", "status": "final", "code": {"text": f"race {i}"},
                      "subject": {"reference": "urn:uuid:0b8f3c1e-0000-4000-8000-000000000001"}},
         "request": {"method": "POST", "url": "Observation"}}]}


async def test_concurrent_transactions_with_if_none_exist_create_one_resource(client: httpx.AsyncClient) -> None:
    value = "transaction"
    responses = await asyncio.gather(*(client.post("/fhir", json=_transaction(value, i)) for i in range(N)))
    assert [r.status_code for r in responses] == [200] * N, [r.text for r in responses if r.status_code != 200]
    statuses = Counter(r.json()["entry"][0]["response"]["status"] for r in responses)
    assert statuses == {"201 Created": 1, "200 OK": N - 1}
    stored = await _patients(client, value)
    assert len(stored) == 1
    observations = await client.get("/fhir/Observation", params={"subject": f"Patient/{stored[0]['id']}"})
    assert observations.json()["total"] == N  # every transaction's Observation refers to the one Patient


async def test_concurrent_batches_with_if_none_exist_create_one_resource(client: httpx.AsyncClient) -> None:
    value = "batch"
    bundle = {"resourceType": "Bundle", "type": "batch", "entry": [
        {"resource": patient(identifier=[{"system": SYSTEM, "value": value}]),
         "request": {"method": "POST", "url": "Patient", "ifNoneExist": f"identifier={SYSTEM}|{value}"}}]}
    responses = await asyncio.gather(*(client.post("/fhir", json=bundle) for _ in range(N)))
    assert [r.status_code for r in responses] == [200] * N
    statuses = Counter(r.json()["entry"][0]["response"]["status"] for r in responses)
    assert statuses == {"201 Created": 1, "200 OK": N - 1}, [r.text for r in responses]
    assert len(await _patients(client, value)) == 1


async def test_a_deleted_match_does_not_block_a_new_conditional_create(client: httpx.AsyncClient) -> None:
    first = await _conditional_post(client, "deleted")
    assert first.status_code == 201
    assert (await client.delete(f"/fhir/Patient/{first.json()['id']}")).status_code in (200, 204)
    responses = await asyncio.gather(*(_conditional_post(client, "deleted") for _ in range(N)))
    assert sorted(r.status_code for r in responses) == [200] * (N - 1) + [201]
    stored = await _patients(client, "deleted")
    assert len(stored) == 1 and stored[0]["id"] != first.json()["id"]


async def test_a_match_updated_away_does_not_block_a_new_conditional_create(client: httpx.AsyncClient) -> None:
    first = (await _conditional_post(client, "moved")).json()
    moved = {**first, "identifier": [{"system": SYSTEM, "value": "moved-elsewhere"}]}
    assert (await client.put(f"/fhir/Patient/{first['id']}", json=moved)).status_code == 200
    again = await _conditional_post(client, "moved")
    assert again.status_code == 201 and again.json()["id"] != first["id"]
    assert (await _conditional_post(client, "moved")).status_code == 200


async def test_different_criteria_do_not_wait_for_each_other(client: httpx.AsyncClient) -> None:
    responses = await asyncio.gather(*(_conditional_post(client, f"distinct-{i}") for i in range(N)))
    assert [r.status_code for r in responses] == [201] * N, [r.text for r in responses]
    assert len({r.json()["id"] for r in responses}) == N


async def test_concurrent_conditional_updates_create_one_resource(client: httpx.AsyncClient) -> None:
    """``PUT Patient?identifier=…`` with no match creates; N at once create one, the others update it."""
    value = "conditional-update"
    responses = await asyncio.gather(*(
        client.put(f"/fhir/Patient?identifier={SYSTEM}|{value}",
                   json=patient(identifier=[{"system": SYSTEM, "value": value}], name=[{"family": f"w{i}"}]))
        for i in range(N)))
    assert sorted(r.status_code for r in responses) == [200] * (N - 1) + [201], [r.text for r in responses]
    stored = await _patients(client, value)
    assert len(stored) == 1 and stored[0]["meta"]["versionId"] == str(N)


async def test_concurrent_transactions_with_conditional_updates_create_one_resource(
        client: httpx.AsyncClient) -> None:
    value = "transaction-update"
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": patient(identifier=[{"system": SYSTEM, "value": value}]),
         "request": {"method": "PUT", "url": f"Patient?identifier={SYSTEM}|{value}"}}]}
    responses = await asyncio.gather(*(client.post("/fhir", json=bundle) for _ in range(N)))
    assert [r.status_code for r in responses] == [200] * N, [r.text for r in responses if r.status_code != 200]
    statuses = Counter(r.json()["entry"][0]["response"]["status"] for r in responses)
    assert statuses == {"201 Created": 1, "200 OK": N - 1}
    assert len(await _patients(client, value)) == 1
