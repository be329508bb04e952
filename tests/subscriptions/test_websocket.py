"""Websocket channel against a real server (uvicorn) and a real websocket client."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import orjson
import pytest
import websockets

from fhir_server.app import create_app
from fhir_server.settings import Settings
from tests.conftest import STORE, make_store
from tests.subscriptions.support import PATIENT_DATA_CHANGE, classic, observation, serve, status_of, topic


@pytest.fixture
async def live(settings: Settings, tmp_path: Path, request: pytest.FixtureRequest
               ) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings, make_store(STORE, tmp_path, request))
    async with app.router.lifespan_context(app), serve(app) as url:
        async with httpx.AsyncClient(base_url=url) as c:
            await c.put("/fhir/Patient/p1", json={"resourceType": "Patient", "id": "p1"})
            yield c


def _ws(client: httpx.AsyncClient) -> str:
    return str(client.base_url).replace("http://", "ws://").rstrip("/") + "/fhir/ws"


async def test_classic_websocket_bind_then_ping_per_event(live: httpx.AsyncClient) -> None:
    sub = (await live.post("/fhir/Subscription", json=classic("Observation?patient=p1", "",
                                                              channel="websocket"))).json()
    assert sub["status"] == "active"
    async with websockets.connect(_ws(live)) as ws:
        await ws.send("bind nope")
        assert (await asyncio.wait_for(ws.recv(), 5)).startswith("error nope")
        await ws.send(f"bind {sub['id']}")
        assert await asyncio.wait_for(ws.recv(), 5) == f"bound {sub['id']}"
        await live.post("/fhir/Observation", json=observation("p1"))
        await live.post("/fhir/Observation", json=observation("p1"))
        assert await asyncio.wait_for(ws.recv(), 5) == f"ping {sub['id']}"
        assert await asyncio.wait_for(ws.recv(), 5) == f"ping {sub['id']}"


async def test_topic_websocket_binding_token_then_handshake_and_notifications(live: httpx.AsyncClient) -> None:
    sub = (await live.post("/fhir/Subscription", json=topic(
        PATIENT_DATA_CHANGE, None, filters=["Observation?patient=p1"], channel="websocket",
        content="full-resource"))).json()
    assert sub["status"] == "active"
    r = await live.get(f"/fhir/Subscription/{sub['id']}/$get-ws-binding-token")
    assert r.status_code == 200, r.text
    out = {p["name"]: next(v for k, v in p.items() if k.startswith("value")) for p in r.json()["parameter"]}
    assert out["subscription"] == sub["id"] and out["websocket-url"] == _ws(live)
    assert out["expiration"].endswith("Z")
    await live.post("/fhir/Observation", json=observation("p1"))  # before binding: waits for the socket
    async with websockets.connect(out["websocket-url"]) as ws:
        await ws.send("bind-with-token not-a-token")
        assert (await asyncio.wait_for(ws.recv(), 5)).startswith("error")
        await ws.send(f"bind-with-token {out['token']}")
        handshake = orjson.loads(await asyncio.wait_for(ws.recv(), 5))
        assert status_of(handshake)["type"] == "handshake"
        first = orjson.loads(await asyncio.wait_for(ws.recv(), 5))
        assert status_of(first)["events"][0]["event-number"] == "1"
        obs = (await live.post("/fhir/Observation", json=observation("p1"))).json()
        second = orjson.loads(await asyncio.wait_for(ws.recv(), 5))
        assert status_of(second)["events"][0]["event-number"] == "2"
        assert second["entry"][1]["resource"]["id"] == obs["id"]


async def test_binding_token_needs_a_websocket_subscription(live: httpx.AsyncClient) -> None:
    sub = (await live.post("/fhir/Subscription", json=classic("Observation?patient=p1", "http://127.0.0.1:9/h"))
           ).json()
    r = await live.get(f"/fhir/Subscription/{sub['id']}/$get-ws-binding-token")
    assert r.status_code == 400 and r.json()["issue"][0]["code"] == "not-supported"
    ws_sub = (await live.post("/fhir/Subscription", json=classic("Observation?patient=p1", "",
                                                                 channel="websocket"))).json()
    r = await live.post("/fhir/Subscription/$get-ws-binding-token", json={
        "resourceType": "Parameters", "parameter": [{"name": "id", "valueId": ws_sub["id"]}]})
    assert r.status_code == 200, r.text
