"""A real HTTP receiver for notifications (uvicorn on 127.0.0.1, in the test's event loop) and subscription
builders."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import orjson
import uvicorn

BACKPORT = "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/"
CANONICAL = "https://ascmi.example.org/fhir"
CONSENT_CHANGE = f"{CANONICAL}/SubscriptionTopic/consent-change"
PATIENT_DATA_CHANGE = f"{CANONICAL}/SubscriptionTopic/patient-data-change"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    at: float

    def json(self) -> Any:
        return orjson.loads(self.body)


@dataclass
class Receiver:
    """Records every request; answers ``status`` (or the next of ``script``) after ``delay`` seconds."""

    url: str = ""
    requests: list[Received] = field(default_factory=list)
    status: int = 200
    script: list[int] = field(default_factory=list)
    delay: float = 0.0
    _arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def __call__(self, scope: dict[str, Any], receive: Callable[[], Awaitable[dict[str, Any]]],
                       send: Callable[[dict[str, Any]], Awaitable[None]]) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        self.requests.append(Received(scope["method"], scope["path"], headers, body, time.monotonic()))
        self._arrived.set()
        if self.delay:
            await asyncio.sleep(self.delay)
        status = self.script.pop(0) if self.script else self.status
        await send({"type": "http.response.start", "status": status, "headers": [(b"content-length", b"0")]})
        await send({"type": "http.response.body", "body": b""})

    async def wait_for(self, count: int, timeout: float = 10.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        while len(self.requests) < count:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"expected {count} requests, got {len(self.requests)}: "
                                     f"{[(r.method, r.path) for r in self.requests]}")
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), min(left, 0.2))
            except TimeoutError:
                pass
        return self.requests

    def notifications(self) -> list[dict[str, Any]]:
        """The notification Bundles received, handshakes and heartbeats left out."""
        out = []
        for r in self.requests:
            if r.body:
                b = r.json()
                if b.get("resourceType") == "Bundle" and status_of(b)["type"] == "event-notification":
                    out.append(b)
        return out


@asynccontextmanager
async def serve(app: Any) -> AsyncIterator[str]:
    """Run an ASGI app with uvicorn on a free 127.0.0.1 port; yields ``http://127.0.0.1:<port>``."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                           lifespan="off", timeout_graceful_shutdown=1))
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


@asynccontextmanager
async def receiver() -> AsyncIterator[Receiver]:
    r = Receiver()
    async with serve(r) as url:
        r.url = url + "/hook"
        yield r


def classic(criteria: str, endpoint: str, *, payload: str | None = None, headers: list[str] | None = None,
            channel: str = "rest-hook") -> dict[str, Any]:
    ch: dict[str, Any] = {"type": channel}
    if channel == "rest-hook":
        ch["endpoint"] = endpoint
    if payload:
        ch["payload"] = payload
    if headers:
        ch["header"] = headers
    return {"resourceType": "Subscription", "status": "requested", "reason": "test", "criteria": criteria,
            "channel": ch}


def topic(topic_url: str, endpoint: str | None, *, filters: list[str] = (), content: str = "id-only",  # type: ignore[assignment]
          heartbeat: int | None = None, channel: str = "rest-hook", headers: list[str] | None = None,
          max_count: int | None = None, timeout: int | None = None) -> dict[str, Any]:
    ch: dict[str, Any] = {"type": channel, "payload": "application/fhir+json"}
    if content is not None:
        ch["_payload"] = {"extension": [{"url": BACKPORT + "backport-payload-content", "valueCode": content}]}
    if endpoint is not None:
        ch["endpoint"] = endpoint
    ext = []
    if heartbeat is not None:
        ext.append({"url": BACKPORT + "backport-heartbeat-period", "valueUnsignedInt": heartbeat})
    if max_count is not None:
        ext.append({"url": BACKPORT + "backport-max-count", "valuePositiveInt": max_count})
    if timeout is not None:
        ext.append({"url": BACKPORT + "backport-timeout", "valueUnsignedInt": timeout})
    if ext:
        ch["extension"] = ext
    if headers:
        ch["header"] = headers
    sub: dict[str, Any] = {"resourceType": "Subscription", "meta": {"profile": [BACKPORT + "backport-subscription"]},
                           "status": "requested", "reason": "test", "criteria": topic_url, "channel": ch}
    if filters:
        sub["_criteria"] = {"extension": [{"url": BACKPORT + "backport-filter-criteria", "valueString": f}
                                          for f in filters]}
    return sub


def status_of(bundle: dict[str, Any]) -> dict[str, Any]:
    """The SubscriptionStatus Parameters of a notification as a flat dict (notification-event parts listed)."""
    params = bundle["entry"][0]["resource"]
    assert params["resourceType"] == "Parameters"
    out: dict[str, Any] = {"events": []}
    for p in params["parameter"]:
        if p["name"] == "notification-event":
            out["events"].append({q["name"]: next(v for k, v in q.items() if k.startswith("value"))
                                  for q in p["part"]})
        else:
            out[p["name"]] = next(v for k, v in p.items() if k.startswith("value"))
    return out


def observation(patient_id: str, status: str = "final", **extra: Any) -> dict[str, Any]:
    return {"resourceType": "Observation", "status": status, "code": {"text": "pulse"},
            "subject": {"reference": f"Patient/{patient_id}"}, **extra}


def consent(patient_id: str, status: str = "active") -> dict[str, Any]:
    return {"resourceType": "Consent", "status": status,
            "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope",
                                  "code": "patient-privacy"}]},
            "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
            "patient": {"reference": f"Patient/{patient_id}"}, "policyRule": {"text": "HIPAA"}}  # ppc-1
