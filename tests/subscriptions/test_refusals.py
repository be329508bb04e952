"""What a Subscription may not be: 422 with the right issue code, and nothing stored (ACCESS.md §E)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from fhir_server.settings import Settings
from tests.subscriptions.support import BACKPORT, CONSENT_CHANGE, PATIENT_DATA_CHANGE, classic, topic

HOOK = "https://127.0.0.1:9/hook"


def _without_content(sub: dict[str, Any]) -> dict[str, Any]:
    sub["channel"].pop("_payload")
    return sub


REFUSED = [
    ("unknown topic", topic("https://ascmi.example.org/fhir/SubscriptionTopic/nope", HOOK), "not-supported"),
    ("filter the topic lacks", topic(CONSENT_CHANGE, HOOK, filters=["Consent?category=x"]), "not-supported"),
    ("filter on another type", topic(CONSENT_CHANGE, HOOK, filters=["Observation?patient=p1"]), "not-supported"),
    ("patient-data-change without filter", topic(PATIENT_DATA_CHANGE, HOOK), "business-rule"),
    ("type without patient parameter", topic(PATIENT_DATA_CHANGE, HOOK, filters=["Organization?patient=x"]),
     "not-supported"),
    ("missing payload content", _without_content(topic(CONSENT_CHANGE, HOOK)), "required"),
    ("bad payload content", topic(CONSENT_CHANGE, HOOK, content="everything"), "invalid"),
    ("email channel", classic("Observation?status=final", HOOK, channel="email"), "not-supported"),
    ("invalid criteria", classic("Observation?nonsense=1", HOOK), "invalid"),
    ("criteria of no type", classic("Nothing?status=final", HOOK), "invalid"),
    ("result parameter", classic("Observation?_sort=date", HOOK), "invalid"),
    ("bad header", classic("Observation?status=final", HOOK, headers=["no colon"]), "invalid"),
]

ENDPOINTS = [
    "ftp://127.0.0.1/hook",
    "http://example.org/hook",  # plain http to a non-loopback host
    "https://10.1.2.3/hook",
    "https://172.20.0.1/hook",
    "https://192.168.1.1/hook",
    "https://169.254.169.254/latest/meta-data",
    "https://[fd00:ec2::254]/",
    "https://[fe80::1]/hook",
    "https://[::ffff:10.0.0.1]/hook",
    "https://0.0.0.0/hook",
    "https://user:secret@127.0.0.1/hook",
    "https://no-such-host.invalid/hook",
]


async def _nothing_stored(client: httpx.AsyncClient) -> None:
    found = (await client.get("/fhir/Subscription", params={"_total": "accurate"})).json()
    assert found.get("total", 0) == 0, found


@pytest.mark.parametrize(("why", "body", "code"), REFUSED, ids=[r[0] for r in REFUSED])
async def test_refused_subscriptions_answer_422_and_store_nothing(client: httpx.AsyncClient, why: str,
                                                                  body: dict[str, Any], code: str) -> None:
    r = await client.post("/fhir/Subscription", json=body)
    assert r.status_code == 422, r.text
    assert r.json()["issue"][0]["code"] == code, r.json()
    await _nothing_stored(client)


@pytest.mark.parametrize("url", ENDPOINTS)
async def test_refused_endpoints_on_create_and_update(client: httpx.AsyncClient, url: str) -> None:
    r = await client.post("/fhir/Subscription", json=classic("Observation?status=final", url))
    assert r.status_code == 422, r.text
    assert r.json()["issue"][0]["code"] == "business-rule"
    await _nothing_stored(client)
    ok = (await client.post("/fhir/Subscription", json=classic("Observation?status=final", HOOK))).json()
    changed = {**ok, "channel": {**ok["channel"], "endpoint": url}}
    r = await client.put(f"/fhir/Subscription/{ok['id']}", json=changed)
    assert r.status_code == 422
    assert (await client.get(f"/fhir/Subscription/{ok['id']}")).json()["channel"]["endpoint"] == HOOK


@pytest.mark.parametrize("url", ["http://127.0.0.1:9/hook", "http://localhost:9/hook", "http://[::1]:9/hook",
                                 "https://127.0.0.1/hook"])
async def test_loopback_endpoints_are_allowed(client: httpx.AsyncClient, url: str) -> None:
    r = await client.post("/fhir/Subscription", json=classic("Observation?status=final", url))
    assert r.status_code == 201, r.text


async def test_settings_can_allow_private_addresses(settings: Settings, client: httpx.AsyncClient) -> None:
    app = client._transport.app  # type: ignore[attr-defined]
    service = app.state.subscriptions
    from dataclasses import replace

    service.settings = replace(settings, subscription_allow_private=True)
    r = await client.post("/fhir/Subscription", json=classic("Observation?status=final", "https://10.1.2.3/h"))
    assert r.status_code == 201, r.text
    assert (await client.post("/fhir/Subscription", json=classic("Observation?status=final",
                                                                 "http://10.1.2.3/h"))).status_code == 422


async def test_subscriptions_in_a_bundle_are_refused(client: httpx.AsyncClient) -> None:
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"request": {"method": "POST", "url": "Subscription"}, "resource": classic("Observation?status=final",
                                                                                   HOOK)}]}
    r = await client.post("/fhir", json=bundle)
    assert r.status_code == 422, r.text
    await _nothing_stored(client)


def test_backport_extension_urls_are_the_igs() -> None:
    assert BACKPORT == "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/"


async def test_capability_statement_lists_topics_and_the_websocket(client: httpx.AsyncClient) -> None:
    cs = (await client.get("/fhir/metadata")).json()
    rest = cs["rest"][0]
    ws = [e for e in rest["extension"]
          if e["url"] == "http://hl7.org/fhir/StructureDefinition/capabilitystatement-websocket"]
    assert ws and ws[0]["valueUri"] == "ws://test/fhir/ws"
    [sub] = [r for r in rest["resource"] if r["type"] == "Subscription"]
    topics = {e["valueCanonical"] for e in sub["extension"]
              if e["url"] == BACKPORT + "capabilitystatement-subscriptiontopic-canonical"}
    assert topics == {CONSENT_CHANGE, PATIENT_DATA_CHANGE}
    ops = {o["name"] for o in sub["operation"]}
    assert {"status", "events", "get-ws-binding-token"} <= ops
