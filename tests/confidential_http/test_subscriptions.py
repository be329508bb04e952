"""The consent-change topic covers confidential communications requests (ASCMI.md §6): a plan's mailing system
subscribed to new and changed Consents hears of a request at once, and of its replacement."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from fhir_server.settings import Settings
from tests.confidential_http.support import consent_ref, example, post_request
from tests.subscriptions.support import CONSENT_CHANGE, Receiver, receiver, status_of, topic


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path, load_conformance=True, auth="off", subscription_retry_seconds=0.1,
                    subscription_max_attempts=3, subscription_poll_seconds=0.1)


@pytest.fixture
async def hook() -> AsyncIterator[Receiver]:
    async with receiver() as r:
        yield r


async def _active(client: httpx.AsyncClient, sub_id: str) -> None:
    for _ in range(100):
        if (await client.get(f"/fhir/Subscription/{sub_id}")).json()["status"] != "requested":
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the subscription stayed requested")


async def test_a_new_request_and_its_replacement_are_consent_change_events(client: httpx.AsyncClient,
                                                                          hook: Receiver) -> None:
    sub = (await client.post("/fhir/Subscription", json=topic(
        CONSENT_CHANGE, hook.url, filters=["Consent?status=active,inactive"], content="full-resource"))).json()
    await _active(client, sub["id"])
    first = consent_ref(await post_request(client, example("electronic")))
    await hook.wait_for(2)
    [note] = hook.notifications()
    resource = note["entry"][1]["resource"]
    assert f"Consent/{resource['id']}" == first
    assert resource["extension"][0]["valueContactPoint"]["value"] == "m.delgado.private@example.org"
    newer = consent_ref(await post_request(client, example("replacement")))
    await hook.wait_for(4)
    later = hook.notifications()[1:]
    changed = {(n["entry"][1]["request"]["method"], f"Consent/{n['entry'][1]['resource']['id']}") for n in later}
    assert changed == {("POST", newer), ("PUT", first)}
    assert [status_of(n)["events"][0]["event-number"] for n in hook.notifications()] == ["1", "2", "3"]
