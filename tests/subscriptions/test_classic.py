"""Classic R4 subscriptions over rest-hook: criteria are searches evaluated against each written resource."""

from __future__ import annotations

import httpx

from tests.subscriptions.support import Receiver, classic, observation


async def _patients(client: httpx.AsyncClient, *ids: str) -> None:
    for i in ids:
        r = await client.put(f"/fhir/Patient/{i}", json={"resourceType": "Patient", "id": i})
        assert r.status_code in (200, 201), r.text


async def test_classic_subscription_is_active_at_once_and_posts_without_body_on_a_match(
        client: httpx.AsyncClient, hook: Receiver) -> None:
    await _patients(client, "p1", "p2")
    r = await client.post("/fhir/Subscription", json=classic("Observation?patient=Patient/p1", hook.url,
                                                             headers=["Authorization: Bearer xyz"]))
    assert r.status_code == 201, r.text
    assert r.json()["status"] == "active"
    await client.post("/fhir/Observation", json=observation("p2"))
    await client.post("/fhir/Observation", json=observation("p1"))
    [req] = await hook.wait_for(1)
    assert req.method == "POST" and req.path == "/hook" and req.body == b""
    assert req.headers["authorization"] == "Bearer xyz"


async def test_classic_payload_puts_the_resource_at_endpoint_type_id_and_deletes_too(
        client: httpx.AsyncClient, hook: Receiver) -> None:
    await _patients(client, "p1")
    r = await client.post("/fhir/Subscription", json=classic("Observation?status=final", hook.url,
                                                             payload="application/fhir+json"))
    assert r.status_code == 201, r.text
    created = (await client.post("/fhir/Observation", json=observation("p1"))).json()
    await client.post("/fhir/Observation", json=observation("p1", status="preliminary"))
    put, = await hook.wait_for(1)
    assert put.method == "PUT" and put.path == f"/hook/Observation/{created['id']}"
    assert put.headers["content-type"].startswith("application/fhir+json")
    assert put.json()["id"] == created["id"] and put.json()["meta"]["versionId"] == "1"
    assert (await client.delete(f"/fhir/Observation/{created['id']}")).status_code == 200
    reqs = await hook.wait_for(2)
    assert (reqs[1].method, reqs[1].path) == ("DELETE", f"/hook/Observation/{created['id']}")


async def test_criteria_with_any_supported_search_are_evaluated_by_the_store(
        client: httpx.AsyncClient, hook: Receiver) -> None:
    await _patients(client, "p1")
    r = await client.post("/fhir/Subscription", json=classic("Observation?code:text=pul&date=ge2020-01-01",
                                                             hook.url))
    assert r.status_code == 201, r.text
    await client.post("/fhir/Observation", json=observation("p1", effectiveDateTime="2019-05-01"))
    await client.post("/fhir/Observation", json=observation("p1", effectiveDateTime="2021-05-01"))
    await hook.wait_for(1)
    await client.post("/fhir/Observation", json=observation("p1", effectiveDateTime="2018-05-01"))
    await client.post("/fhir/Observation", json=observation("p1", effectiveDateTime="2022-05-01"))
    assert len(await hook.wait_for(2)) == 2


async def test_writes_in_a_transaction_bundle_are_notified(client: httpx.AsyncClient, hook: Receiver) -> None:
    await _patients(client, "p1")
    await client.post("/fhir/Subscription", json=classic("Observation?patient=p1", hook.url))
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"request": {"method": "POST", "url": "Observation"}, "resource": observation("p1")} for _ in range(3)]}
    assert (await client.post("/fhir", json=bundle)).status_code == 200
    assert len(await hook.wait_for(3)) == 3


async def test_a_subscription_set_off_records_nothing(client: httpx.AsyncClient, hook: Receiver) -> None:
    await _patients(client, "p1")
    sub = (await client.post("/fhir/Subscription", json=classic("Observation?patient=p1", hook.url))).json()
    sub["status"] = "off"
    r = await client.put(f"/fhir/Subscription/{sub['id']}", json=sub)
    assert r.status_code == 200 and r.json()["status"] == "off"
    await client.post("/fhir/Observation", json=observation("p1"))
    sub["status"] = "active"
    assert (await client.put(f"/fhir/Subscription/{sub['id']}", json=sub)).json()["status"] == "active"
    await client.post("/fhir/Observation", json=observation("p1"))
    await hook.wait_for(1)
    import asyncio

    await asyncio.sleep(0.3)
    assert len(hook.requests) == 1
