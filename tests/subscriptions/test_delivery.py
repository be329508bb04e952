"""Delivery guarantees: retries with backoff then error, order under quick writes, slow endpoints isolated."""

from __future__ import annotations

import asyncio
import time

import httpx

from tests.subscriptions.support import PATIENT_DATA_CHANGE, Receiver, classic, observation, receiver, status_of, topic


async def _patient(client: httpx.AsyncClient, pid: str = "p1") -> None:
    assert (await client.put(f"/fhir/Patient/{pid}", json={"resourceType": "Patient", "id": pid})).is_success


async def test_a_failing_endpoint_is_retried_with_backoff_and_the_event_keeps_its_number(
        client: httpx.AsyncClient, hook: Receiver) -> None:
    await _patient(client)
    hook.script = [200, 500, 503]  # handshake ok, then the event fails twice
    sub = (await client.post("/fhir/Subscription", json=topic(
        PATIENT_DATA_CHANGE, hook.url, filters=["Observation?patient=p1"]))).json()
    await hook.wait_for(1)
    await asyncio.sleep(0.2)
    await client.post("/fhir/Observation", json=observation("p1"))
    reqs = await hook.wait_for(4)
    numbers = [status_of(r.json())["events"][0]["event-number"] for r in reqs[1:]]
    assert numbers == ["1", "1", "1"]
    gaps = [reqs[i + 1].at - reqs[i].at for i in (1, 2)]
    # retry base 0.1 s in these tests: ~0.1 s, then ~0.2 s (jitter ≤ 20 %, plus polling)
    assert 0.07 <= gaps[0] <= 0.5 and 0.15 <= gaps[1] <= 0.7 and gaps[1] > gaps[0] * 1.2, gaps
    state = (await client.get(f"/fhir/Subscription/{sub['id']}")).json()
    assert state["status"] == "active"


async def test_after_max_attempts_the_subscription_is_error_with_the_reason_in_status(
        client: httpx.AsyncClient, hook: Receiver) -> None:
    await _patient(client)
    hook.script = [200]
    hook.status = 500
    sub = (await client.post("/fhir/Subscription", json=topic(
        PATIENT_DATA_CHANGE, hook.url, filters=["Observation?patient=p1"]))).json()
    await hook.wait_for(1)
    await asyncio.sleep(0.2)
    await client.post("/fhir/Observation", json=observation("p1"))
    await hook.wait_for(4)  # handshake + 3 attempts (max attempts 3 in these tests)
    for _ in range(50):
        resource = (await client.get(f"/fhir/Subscription/{sub['id']}")).json()
        if resource["status"] == "error":
            break
        await asyncio.sleep(0.05)
    assert resource["status"] == "error" and "HTTP 500" in resource["error"]
    status = status_of((await client.get(f"/fhir/Subscription/{sub['id']}/$status")).json())
    assert status["status"] == "error"
    assert status["error"]["coding"][0]["code"] == "no-response" and "HTTP 500" in status["error"]["text"]
    await client.post("/fhir/Observation", json=observation("p1"))  # still recorded while in error
    await asyncio.sleep(0.3)
    assert len(hook.requests) == 4
    status = status_of((await client.get(f"/fhir/Subscription/{sub['id']}/$status")).json())
    assert status["events-since-subscription-start"] == "2"
    # requested again: handshake, then delivery resumes with the first undelivered event
    hook.status = 200
    resource["status"] = "requested"
    assert (await client.put(f"/fhir/Subscription/{sub['id']}", json=resource)).status_code == 200
    reqs = await hook.wait_for(7)
    kinds = [status_of(r.json())["type"] for r in reqs[4:]]
    assert kinds == ["handshake", "event-notification", "event-notification"]
    assert [status_of(r.json())["events"][0]["event-number"] for r in reqs[5:]] == ["1", "2"]


async def test_classic_subscription_goes_to_error_too(client: httpx.AsyncClient, hook: Receiver) -> None:
    await _patient(client)
    hook.status = 404
    sub = (await client.post("/fhir/Subscription", json=classic("Observation?patient=p1", hook.url))).json()
    await client.post("/fhir/Observation", json=observation("p1"))
    await hook.wait_for(3)
    for _ in range(50):
        resource = (await client.get(f"/fhir/Subscription/{sub['id']}")).json()
        if resource["status"] == "error":
            break
        await asyncio.sleep(0.05)
    assert resource["status"] == "error" and "HTTP 404" in resource["error"]


async def test_events_of_100_quick_writes_arrive_in_order(client: httpx.AsyncClient, hook: Receiver) -> None:
    await _patient(client)
    sub = (await client.post("/fhir/Subscription", json=topic(
        PATIENT_DATA_CHANGE, hook.url, filters=["Observation?patient=p1"], content="id-only"))).json()
    await hook.wait_for(1)
    hook.script = [500 if i % 17 == 5 else 200 for i in range(200)]  # a few failures on the way
    written = await asyncio.gather(*[client.post("/fhir/Observation", json=observation("p1"))
                                     for _ in range(100)])
    assert all(r.status_code == 201 for r in written), [r.text for r in written if r.status_code != 201][:2]
    deadline = time.monotonic() + 30
    while len({status_of(n)["events"][0]["event-number"] for n in hook.notifications()}) < 100:
        assert time.monotonic() < deadline, len(hook.notifications())
        await asyncio.sleep(0.1)
    numbers = [int(status_of(n)["events"][0]["event-number"]) for n in hook.notifications()]
    # in order: each number is the previous one or the previous + 1 (a retry repeats a number)
    assert numbers[0] == 1 and all(b in (a, a + 1) for a, b in zip(numbers, numbers[1:], strict=False)), numbers
    assert sorted(set(numbers)) == list(range(1, 101))
    focus = [n["entry"][1]["fullUrl"].split("/")[-1] for n in hook.notifications()]
    ids = {r.json()["id"] for r in written}
    assert set(focus) == ids
    assert sub["id"]


async def test_a_slow_endpoint_does_not_stall_other_subscriptions(client: httpx.AsyncClient, hook: Receiver
                                                                  ) -> None:
    await _patient(client)
    async with receiver() as slow:
        slow.delay = 3.0
        await client.post("/fhir/Subscription", json=classic("Observation?patient=p1", slow.url))
        await client.post("/fhir/Subscription", json=classic("Observation?patient=p1", hook.url))
        start = time.monotonic()
        for _ in range(3):
            await client.post("/fhir/Observation", json=observation("p1"))
        await hook.wait_for(3, timeout=2.5)
        assert time.monotonic() - start < 2.5
        await slow.wait_for(1)
