"""A Care Partner's subscription is the Care Partner's: scopes for its criteria, notifications through the gate
as that caller at delivery time (a revocation stops them at once), full-resource payloads as disclosed copies."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from fhir_server.app import create_app
from fhir_server.security.caller import Caller
from fhir_server.settings import Settings
from tests.conftest import STORE, make_store
from tests.enforcement.world import build, labels_of, observation, revoke
from tests.subscriptions.support import PATIENT_DATA_CHANGE, Receiver, status_of, topic

HEADER = b"x-test-caller"


class Callers:
    """Test-only edge: ``x-test-caller: <organization>|<purpose>|<client>|<scopes>`` sets the request's caller."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            raw = dict(scope.get("headers") or []).get(HEADER)
            if raw:
                org, purpose, client, scopes = raw.decode().split("|")
                granted = dict(s.split("=") for s in scopes.split(";"))
                scope.setdefault("state", {})["caller"] = Caller(client, org, granted, purpose)
        await self.app(scope, receive, send)


def partner(organization: str, client: str = "client-plan", scopes: str = "*=cruds") -> dict[str, str]:
    return {"x-test-caller": f"{organization}|TREAT|{client}|{scopes}"}


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path, auth="off", load_conformance=True, subscription_retry_seconds=0.1,
                    subscription_max_attempts=3, subscription_poll_seconds=0.1)


@pytest.fixture
async def client(settings: Settings, tmp_path: Path, request: pytest.FixtureRequest
                 ) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings, make_store(STORE, tmp_path, request))
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=Callers(app)), base_url="http://test") as c:
            yield c


async def _active(client: httpx.AsyncClient, sub_id: str, headers: dict[str, str]) -> None:
    for _ in range(100):
        if (await client.get(f"/fhir/Subscription/{sub_id}", headers=headers)).json()["status"] == "active":
            return
        await asyncio.sleep(0.05)
    raise AssertionError("not active")


async def test_partner_is_notified_only_of_what_it_may_see_and_revocation_stops_it(
        client: httpx.AsyncClient, hook: Receiver) -> None:
    w = await build(client, "mental-health")
    h = partner(w.orgs["PLAN"])
    r = await client.post("/fhir/Subscription", headers=h, json=topic(
        PATIENT_DATA_CHANGE, hook.url, filters=[f"Observation?patient={w.patient}"], content="full-resource"))
    assert r.status_code == 201, r.text
    sub = r.json()
    await _active(client, sub["id"], h)
    secret = await w.post(observation(w.patient, "2222-2", labels_of("mental-health")))
    general = await w.post(observation(w.patient, "1111-1"))
    await hook.wait_for(2)
    await asyncio.sleep(0.4)
    notes = hook.notifications()
    assert [n["entry"][1]["fullUrl"].split("/", 3)[-1] for n in notes] == [f"fhir/{general}"]
    assert status_of(notes[0])["events"][0]["event-number"] == "1"  # the secret one was withheld: no number
    assert secret.split("/")[1] not in hook.requests[-1].body.decode()
    # $events as the owner leaves the withheld event out too
    events = (await client.get(f"/fhir/Subscription/{sub['id']}/$events", headers=h)).json()
    assert [e["fullUrl"].split("/", 3)[-1] for e in events["entry"][1:]] == [f"fhir/{general}"]

    await revoke(w)
    await w.post(observation(w.patient, "1111-1"))
    await asyncio.sleep(0.6)
    assert len(hook.notifications()) == 1


async def test_criteria_need_the_callers_read_scopes(client: httpx.AsyncClient, hook: Receiver) -> None:
    w = await build(client, "hiv")
    h = partner(w.orgs["PLAN"], scopes="Subscription=cruds;Consent=rs")
    r = await client.post("/fhir/Subscription", headers=h, json=topic(
        PATIENT_DATA_CHANGE, hook.url, filters=[f"Observation?patient={w.patient}"]))
    assert r.status_code == 403 and r.json()["issue"][0]["code"] == "forbidden"
    assert (await client.get("/fhir/Subscription", params={"_total": "accurate"})).json().get("total", 0) == 0


async def test_another_client_cannot_see_or_change_a_subscription(client: httpx.AsyncClient,
                                                                   hook: Receiver) -> None:
    w = await build(client, "hiv")
    owner = partner(w.orgs["PLAN"])
    sub = (await client.post("/fhir/Subscription", headers=owner, json=topic(
        PATIENT_DATA_CHANGE, hook.url, filters=[f"Observation?patient={w.patient}"]))).json()
    other = partner(w.orgs["OUTSIDER"], client="client-outsider")
    assert (await client.get(f"/fhir/Subscription/{sub['id']}/$status", headers=other)).status_code == 404
    assert (await client.get(f"/fhir/Subscription/{sub['id']}/$events", headers=other)).status_code == 404
    assert (await client.put(f"/fhir/Subscription/{sub['id']}", headers=other, json=sub)).status_code == 404
    assert (await client.get(f"/fhir/Subscription/{sub['id']}/$status", headers=owner)).status_code == 200


async def test_a_disabled_client_gets_nothing_until_enabled_again(client: httpx.AsyncClient, hook: Receiver) -> None:
    from fhir_server.security.clients import Client
    from fhir_server.store.security import security_store

    w = await build(client, "hiv")
    h = partner(w.orgs["PLAN"], client="client-disabled")
    app = client._transport.app.app  # type: ignore[attr-defined]
    registry = security_store(app.state.server.store)
    await registry.add_client(Client("client-disabled", {"keys": []}, w.orgs["PLAN"], ("system/*.rs",),
                                     ("TREAT",)).to_json())
    sub = (await client.post("/fhir/Subscription", headers=h, json=topic(
        PATIENT_DATA_CHANGE, hook.url, filters=[f"Observation?patient={w.patient}"]))).json()
    await _active(client, sub["id"], h)
    await registry.set_client_active("client-disabled", False)
    await asyncio.sleep(1.1)  # past the service's recheck interval
    await w.post(observation(w.patient, "1111-1"))
    await asyncio.sleep(0.6)
    assert hook.notifications() == []
    await registry.set_client_active("client-disabled", True)
    deadline = asyncio.get_running_loop().time() + 40
    while not hook.notifications():
        assert asyncio.get_running_loop().time() < deadline
        await asyncio.sleep(0.2)
    assert status_of(hook.notifications()[0])["events"][0]["event-number"] == "1"


async def test_a_withheld_event_leaves_no_trace_in_event_numbers_or_counts(
        client: httpx.AsyncClient, hook: Receiver) -> None:
    """ACCESS.md §B/§E: a subscription's numbers count only what its owner may see, so neither
    ``events-since-subscription-start`` nor a gap before the next ``event-number`` reveals a withheld write; an
    administrator's subscription on the same data counts both."""
    w = await build(client, "mental-health")
    h = partner(w.orgs["PLAN"])
    r = await client.post("/fhir/Subscription", headers=h, json=topic(
        PATIENT_DATA_CHANGE, hook.url, filters=[f"Observation?patient={w.patient}"]))
    assert r.status_code == 201, r.text
    sub = r.json()
    admin = (await client.post("/fhir/Subscription", json=topic(
        PATIENT_DATA_CHANGE, hook.url, filters=[f"Observation?patient={w.patient}"]))).json()
    await _active(client, sub["id"], h)
    await _active(client, admin["id"], {})
    await w.post(observation(w.patient, "2222-2", labels_of("mental-health")))
    await hook.wait_for(3)  # two handshakes, then the administrator's notification: the write went through
    await asyncio.sleep(0.4)
    status = status_of((await client.get(f"/fhir/Subscription/{sub['id']}/$status", headers=h)).json())
    assert status["events-since-subscription-start"] == "0"

    general = await w.post(observation(w.patient, "1111-1"))
    await hook.wait_for(5)
    await asyncio.sleep(0.4)
    mine = [n for n in hook.notifications()
            if status_of(n)["subscription"]["reference"].endswith(f"/Subscription/{sub['id']}")]
    assert len(mine) == 1
    assert [e["event-number"] for e in status_of(mine[0])["events"]] == ["1"]  # no gap before it
    assert status_of(mine[0])["events-since-subscription-start"] == "1"
    status = status_of((await client.get(f"/fhir/Subscription/{sub['id']}/$status", headers=h)).json())
    assert status["events-since-subscription-start"] == "1"
    events = (await client.get(f"/fhir/Subscription/{sub['id']}/$events", headers=h,
                               params={"eventsSinceNumber": "1", "content": "id-only"})).json()
    assert [e["fullUrl"].split("/", 3)[-1] for e in events["entry"][1:]] == [f"fhir/{general}"]
    assert status_of(events)["events-since-subscription-start"] == "1"
    # the administrator's subscription saw both writes, numbered 1 and 2
    theirs = status_of((await client.get(f"/fhir/Subscription/{admin['id']}/$status")).json())
    assert theirs["events-since-subscription-start"] == "2"
