"""Subscriptions: ingest cost of matching, and commit-to-notification latency (ACCESS.md §D).

- **Ingest**: transaction Bundles of 100 Observations spread over 100 patients, on a fresh server with no
  subscription and on a fresh server with 1,000 active subscriptions (10 per patient, so every write matches
  1 %: classic ``Observation?patient=…``, classic with ``&status=final``, topic patient-data-change). Delivery is
  off on those two servers (``FHIR_SUBSCRIPTION_DELIVERY=false``): the events are matched and recorded
  in each write's transaction — the cost this measures — but not sent, so the sending of 40,000 notifications
  does not compete for the same two cores. Target: ≥ 90 % of the rate without subscriptions.
- **Latency**: a fresh server with delivery on, the same 1,000 subscriptions (half topic ``id-only``, half
  classic with a payload) pointing at a real HTTP receiver in this process; 200 single writes at ~10/s; each
  notification's latency is its arrival time minus the event's ``lastUpdated`` (stamped just before the
  commit, so this slightly overstates). Target: p50 ≤ 100 ms, p99 ≤ 1 s.
"""

from __future__ import annotations

import statistics
import sys
import threading
import time
import uuid
from datetime import datetime
from typing import Any

import httpx
import orjson
import uvicorn

from benchmarks.server import free_port, running_server
from benchmarks.stats import Row, percentile

QUIET = {"FHIR_LOG_LEVEL": "warning"}  # the runner pipes stderr without reading it: no line per request
PATIENTS = 100
PER_PATIENT = 10
BACKPORT = "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/"
TOPIC = "https://ascmi.example.org/fhir/SubscriptionTopic/patient-data-change"


def _epoch(instant: str) -> float:
    return datetime.fromisoformat(instant.replace("Z", "+00:00")).timestamp()


class Receiver:
    """A real HTTP endpoint (uvicorn in a thread): records each notification's latency in seconds."""

    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.count = 0
        self.port = free_port()
        self._server = uvicorn.Server(uvicorn.Config(self.app, host="127.0.0.1", port=self.port,
                                                     log_level="warning", lifespan="off", interface="asgi3"))
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    async def app(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        now = time.time()
        self.count += 1
        if body:
            data = orjson.loads(body)
            if data.get("resourceType") == "Bundle":
                for p in data["entry"][0]["resource"]["parameter"]:
                    if p["name"] == "notification-event":
                        at = next(q["valueInstant"] for q in p["part"] if q["name"] == "timestamp")
                        self.latencies.append(now - _epoch(at))
            elif "meta" in data:
                self.latencies.append(now - _epoch(data["meta"]["lastUpdated"]))
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"0")]})
        await send({"type": "http.response.body", "body": b""})

    def __enter__(self) -> Receiver:
        self._thread.start()
        while not self._server.started:
            time.sleep(0.01)
        return self

    def __exit__(self, *_: object) -> None:
        self._server.should_exit = True
        self._thread.join(10)


def _subscription(i: int, endpoint: str, latency_mix: bool) -> dict[str, Any]:
    patient = f"bench-p{i % PATIENTS}"
    kind = i // PATIENTS % 3 if not latency_mix else (0 if i // PATIENTS % 2 else 2)
    if kind == 2:
        return {"resourceType": "Subscription", "status": "requested", "reason": "bench", "criteria": TOPIC,
                "_criteria": {"extension": [{"url": BACKPORT + "backport-filter-criteria",
                                             "valueString": f"Observation?patient={patient}"}]},
                "channel": {"type": "rest-hook", "endpoint": endpoint, "payload": "application/fhir+json",
                            "_payload": {"extension": [{"url": BACKPORT + "backport-payload-content",
                                                        "valueCode": "id-only"}]}}}
    criteria = f"Observation?patient=Patient/{patient}" + ("&status=final" if kind == 1 else "")
    channel: dict[str, Any] = {"type": "rest-hook", "endpoint": endpoint}
    if latency_mix:
        channel["payload"] = "application/fhir+json"
    return {"resourceType": "Subscription", "status": "requested", "reason": "bench", "criteria": criteria,
            "channel": channel}


def _prepare(client: httpx.Client, base: str, endpoint: str | None, latency_mix: bool = False) -> None:
    patients = [{"request": {"method": "PUT", "url": f"Patient/bench-p{k}"},
                 "resource": {"resourceType": "Patient", "id": f"bench-p{k}"}} for k in range(PATIENTS)]
    r = client.post(base, json={"resourceType": "Bundle", "type": "transaction", "entry": patients})
    assert r.status_code == 200, r.text[:300]
    if endpoint is None:
        return
    for i in range(PATIENTS * PER_PATIENT):
        r = client.post(f"{base}/Subscription", json=_subscription(i, endpoint, latency_mix))
        assert r.status_code == 201, r.text[:300]


def _observation(k: int) -> dict[str, Any]:
    return {"resourceType": "Observation", "status": "final", "code": {"text": "pulse"},
            "subject": {"reference": f"Patient/bench-p{k % PATIENTS}"}, "valueQuantity": {"value": 60 + k % 40}}


def _bundle(start: int) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": "transaction",
            "entry": [{"fullUrl": f"urn:uuid:{uuid.uuid4()}", "request": {"method": "POST", "url": "Observation"},
                       "resource": _observation(start + j)} for j in range(100)]}


def _ingest_rate(client: httpx.Client, base: str, bundles: int) -> float:
    payloads = [_bundle(b * 100) for b in range(bundles)]
    t0 = time.perf_counter()
    for payload in payloads:
        r = client.post(base, json=payload, headers={"Prefer": "return=minimal"})
        assert r.status_code == 200, r.text[:300]
    return bundles * 100 / (time.perf_counter() - t0)


def ingest_rows(bundles: int = 25, rounds: int = 12, warmup: int = 20) -> list[Row]:
    """Alternate the two servers round by round (A B, B A, A B …: each goes first in turn), ``bundles`` transaction
    Bundles per side per round; each round's ratio compares two runs a few seconds apart, and the verdict is the
    median of the rounds' ratios, so a burst of load from elsewhere on the shared machine moves one round, not the
    result."""
    off = {"FHIR_SUBSCRIPTION_DELIVERY": "false", **QUIET}
    with running_server(env=off) as none_base, running_server(env=off) as subs_base, \
            httpx.Client(timeout=300) as client:
        _prepare(client, none_base, None)
        _prepare(client, subs_base, "http://127.0.0.1:9/hook")
        print("  1,000 subscriptions created; measuring ingest …", file=sys.stderr, flush=True)
        for base in (none_base, subs_base):  # warm-up: the same on both (caches, the schema validator, pages)
            _ingest_rate(client, base, warmup)
        none, subs = [], []
        for r in range(rounds):
            order = [(none_base, none), (subs_base, subs)]
            for base, rates in (order if r % 2 == 0 else order[::-1]):
                rates.append(_ingest_rate(client, base, bundles))
    ratios = [s / n for s, n in zip(subs, none, strict=True)]
    ratio = statistics.median(ratios)
    each = " ".join(f"{x:.2f}" for x in ratios)
    return [Row("subscriptions: ingest, no subscription", f"{statistics.median(none):.0f} res/s", "",
                f"baseline (median of {rounds} rounds)"),
            Row("subscriptions: ingest, 1,000 active (1 % match)", f"{statistics.median(subs):.0f} res/s",
                f"{ratio:.2f}×", f"median of rounds: {each}; target ≥ 0.90× (events recorded in each write's"
                " transaction)")]


def latency_rows(writes: int = 200, rate: float = 10.0) -> list[Row]:
    with Receiver() as receiver, running_server(env=QUIET) as base, httpx.Client(timeout=60) as client:
        _prepare(client, base, receiver.url, latency_mix=True)
        print("  1,000 subscriptions created; measuring latency …", file=sys.stderr, flush=True)
        deadline = time.monotonic() + 60
        while receiver.count < PATIENTS * PER_PATIENT // 2 and time.monotonic() < deadline:
            time.sleep(0.1)  # the topic subscriptions' handshakes
        receiver.latencies.clear()
        start = time.monotonic()
        for k in range(writes):
            r = client.post(f"{base}/Observation", json=_observation(k))
            assert r.status_code == 201, r.text[:300]
            pause = start + (k + 1) / rate - time.monotonic()
            if pause > 0:
                time.sleep(pause)
        expected = writes * PER_PATIENT
        deadline = time.monotonic() + 30
        while len(receiver.latencies) < expected and time.monotonic() < deadline:
            time.sleep(0.1)
        ms = [x * 1000 for x in receiver.latencies]
    got = len(ms)
    return [Row("subscriptions: commit → notification p50", f"{percentile(ms, 50):.1f} ms", "",
                f"{got}/{expected} notifications, 1,000 subscriptions, {rate:.0f} writes/s; target ≤ 100 ms"),
            Row("subscriptions: commit → notification p99", f"{percentile(ms, 99):.1f} ms", "", "target ≤ 1 s")]


def run(base: str) -> list[Row]:
    """``base`` (the runner's server) is not used: each measurement needs its own fresh server."""
    return ingest_rows() + latency_rows()


if __name__ == "__main__":
    from benchmarks.stats import print_table

    parts = sys.argv[1:] or ["ingest", "latency"]  # `python -m benchmarks.subscriptions ingest`: one part only
    print_table((ingest_rows() if "ingest" in parts else []) + (latency_rows() if "latency" in parts else []))
