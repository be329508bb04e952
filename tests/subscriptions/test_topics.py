"""Topic-based subscriptions (Backport IG, R4 profiles): handshake, notification shapes, $status, $events."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from tests.subscriptions.support import (
    CONSENT_CHANGE,
    PATIENT_DATA_CHANGE,
    Receiver,
    consent,
    observation,
    status_of,
    topic,
)


async def _patients(client: httpx.AsyncClient, *ids: str) -> None:
    for i in ids:
        assert (await client.put(f"/fhir/Patient/{i}", json={"resourceType": "Patient", "id": i})).is_success


async def _active(client: httpx.AsyncClient, sub_id: str) -> dict:
    for _ in range(100):
        sub = (await client.get(f"/fhir/Subscription/{sub_id}")).json()
        if sub["status"] != "requested":
            return sub
        await asyncio.sleep(0.05)
    raise AssertionError("the subscription stayed requested")


async def test_handshake_on_activation_makes_the_subscription_active(client: httpx.AsyncClient,
                                                                     hook: Receiver) -> None:
    r = await client.post("/fhir/Subscription", json=topic(CONSENT_CHANGE, hook.url, headers=["X-Key: k1"]))
    assert r.status_code == 201, r.text
    assert r.json()["status"] == "requested"
    [handshake] = await hook.wait_for(1)
    bundle = handshake.json()
    assert bundle["type"] == "history" and handshake.headers["x-key"] == "k1"
    status = status_of(bundle)
    assert status["type"] == "handshake" and status["events-since-subscription-start"] == "0"
    assert status["topic"] == CONSENT_CHANGE
    assert (await _active(client, r.json()["id"]))["status"] == "active"


@pytest.mark.parametrize("content", ["empty", "id-only", "full-resource"])
async def test_consent_change_notification_bundle_per_payload_content(client: httpx.AsyncClient, hook: Receiver,
                                                                      content: str) -> None:
    await _patients(client, "p1", "p2")
    sub = (await client.post("/fhir/Subscription", json=topic(
        CONSENT_CHANGE, hook.url, filters=["Consent?patient=Patient/p1"], content=content))).json()
    await _active(client, sub["id"])
    await client.post("/fhir/Consent", json=consent("p2"))
    created = (await client.post("/fhir/Consent", json=consent("p1"))).json()
    await hook.wait_for(2)
    [note] = hook.notifications()
    assert note["type"] == "history"
    assert note["meta"]["profile"] == [
        "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/backport-subscription-notification-r4"]
    first = note["entry"][0]
    assert first["request"]["url"].endswith(f"/Subscription/{sub['id']}/$status")
    status = status_of(note)
    assert status["type"] == "event-notification" and status["status"] == "active"
    assert status["events-since-subscription-start"] == "1"
    [event] = status["events"]
    assert event["event-number"] == "1"
    if content == "empty":
        assert "focus" not in event and len(note["entry"]) == 1
    else:
        assert event["focus"]["reference"].endswith(f"/Consent/{created['id']}")
        entry = note["entry"][1]
        assert entry["fullUrl"].endswith(f"/Consent/{created['id']}")
        assert entry["request"] == {"method": "POST", "url": "Consent"}
        assert ("resource" in entry) == (content == "full-resource")
        if content == "full-resource":
            assert entry["resource"]["id"] == created["id"]


async def test_revocation_and_delete_are_consent_change_events(client: httpx.AsyncClient, hook: Receiver) -> None:
    await _patients(client, "p1")
    sub = (await client.post("/fhir/Subscription", json=topic(
        CONSENT_CHANGE, hook.url, filters=["Consent?patient=p1"]))).json()
    await _active(client, sub["id"])
    c = (await client.post("/fhir/Consent", json=consent("p1"))).json()
    c["status"] = "inactive"
    await client.put(f"/fhir/Consent/{c['id']}", json=c)
    await client.delete(f"/fhir/Consent/{c['id']}")
    await hook.wait_for(4)
    methods = [n["entry"][1]["request"]["method"] for n in hook.notifications()]
    numbers = [status_of(n)["events"][0]["event-number"] for n in hook.notifications()]
    assert methods == ["POST", "PUT", "DELETE"] and numbers == ["1", "2", "3"]


async def test_filters_on_one_type_are_anded_and_on_different_types_ored(client: httpx.AsyncClient,
                                                                          hook: Receiver) -> None:
    await _patients(client, "p1", "p2")
    sub = (await client.post("/fhir/Subscription", json=topic(
        PATIENT_DATA_CHANGE, hook.url, filters=["Observation?patient=p1", "Condition?patient=p2"]))).json()
    await _active(client, sub["id"])
    await client.post("/fhir/Observation", json=observation("p2"))
    await client.post("/fhir/Condition", json={"resourceType": "Condition", "subject": {"reference": "Patient/p1"}})
    await client.post("/fhir/Observation", json=observation("p1"))
    await client.post("/fhir/Condition", json={"resourceType": "Condition", "subject": {"reference": "Patient/p2"}})
    await hook.wait_for(3)
    await asyncio.sleep(0.3)
    types = [n["entry"][1]["fullUrl"].split("/")[-2] for n in hook.notifications()]
    assert types == ["Observation", "Condition"]

    consent_sub = (await client.post("/fhir/Subscription", json=topic(
        CONSENT_CHANGE, hook.url, filters=["Consent?patient=p1", "Consent?status=active"]))).json()
    await _active(client, consent_sub["id"])
    before = len(hook.notifications())
    await client.post("/fhir/Consent", json=consent("p1", status="draft"))
    await client.post("/fhir/Consent", json=consent("p2", status="active"))
    await client.post("/fhir/Consent", json=consent("p1", status="active"))
    await hook.wait_for(len(hook.requests) + 1)
    await asyncio.sleep(0.3)
    assert len(hook.notifications()) - before == 1


async def test_status_and_events_operations(client: httpx.AsyncClient, hook: Receiver) -> None:
    await _patients(client, "p1")
    sub = (await client.post("/fhir/Subscription", json=topic(
        PATIENT_DATA_CHANGE, hook.url, filters=["Observation?patient=p1"], content="full-resource"))).json()
    await _active(client, sub["id"])
    ids = [(await client.post("/fhir/Observation", json=observation("p1"))).json()["id"] for _ in range(3)]
    await hook.wait_for(4)
    for method in ("GET", "POST"):
        r = await client.request(method, f"/fhir/Subscription/{sub['id']}/$status")
        assert r.status_code == 200, r.text
        bundle = r.json()
        assert bundle["type"] == "searchset" and len(bundle["entry"]) == 1
        status = status_of(bundle)
        assert status["type"] == "query-status" and status["events-since-subscription-start"] == "3"
        assert status["status"] == "active"
    r = await client.get(f"/fhir/Subscription/{sub['id']}/$events",
                         params={"eventsSinceNumber": "2", "eventsUntilNumber": "3"})
    assert r.status_code == 200, r.text
    events = r.json()
    assert events["type"] == "history"
    status = status_of(events)
    assert status["type"] == "query-event"
    assert [e["event-number"] for e in status["events"]] == ["2", "3"]
    assert [e["resource"]["id"] for e in events["entry"][1:]] == ids[1:]
    less = (await client.get(f"/fhir/Subscription/{sub['id']}/$events", params={"content": "id-only"})).json()
    assert len(less["entry"]) == 4 and all("resource" not in e for e in less["entry"][1:])


async def test_classic_subscriptions_have_no_status_operation(client: httpx.AsyncClient, hook: Receiver) -> None:
    from tests.subscriptions.support import classic

    sub = (await client.post("/fhir/Subscription", json=classic("Observation?status=final", hook.url))).json()
    r = await client.get(f"/fhir/Subscription/{sub['id']}/$status")
    assert r.status_code == 400 and r.json()["issue"][0]["code"] == "not-supported"
    assert (await client.get("/fhir/Subscription/nope/$status")).status_code == 404


async def test_heartbeats_are_sent_when_nothing_else_goes_out(client: httpx.AsyncClient, hook: Receiver) -> None:
    sub = (await client.post("/fhir/Subscription", json=topic(CONSENT_CHANGE, hook.url, heartbeat=1))).json()
    await _active(client, sub["id"])
    reqs = await hook.wait_for(3, timeout=6)
    kinds = [status_of(r.json())["type"] for r in reqs]
    assert kinds[0] == "handshake" and kinds[1:3] == ["heartbeat", "heartbeat"]
    gap = reqs[2].at - reqs[1].at
    assert 0.5 <= gap <= 2.0, gap
