"""Several server workers share one store: a subscription registered through one worker is matched by writes through
the other at once (its copy of the subscription keys is invalidated through the store), and events written through
both are numbered by whichever worker holds the subscription's lease, each exactly once — no number given twice,
none skipped — and delivered."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import httpx
import pytest

from tests.conftest import STORE
from tests.ops.server import running, store_env
from tests.subscriptions.support import PATIENT_DATA_CHANGE, observation, receiver, status_of, topic

WRITES = 60


@pytest.mark.slow
async def test_two_workers_number_every_event_once_without_gaps(tmp_path: Path,
                                                                request: pytest.FixtureRequest) -> None:
    mongo_uri = request.getfixturevalue("mongo_uri") if STORE == "mongo" else None
    env = {"FHIR_LOAD_CONFORMANCE": "false", "FHIR_SUBSCRIPTION_POLL_SECONDS": "0.1", "FHIR_LOG_LEVEL": "warning",
           **store_env(STORE, mongo_uri, f"workers_{uuid.uuid4().hex}")}
    async with receiver() as hook:
        with running(tmp_path / "data", tmp_path / "server.log", workers=2, env=env) as server:
            async with httpx.AsyncClient(base_url=server.base, timeout=30) as c:
                assert (await c.put("/Patient/p1", json={"resourceType": "Patient", "id": "p1"})).status_code < 300
                # writes on both workers first: each has its copy of the (still empty) subscription keys, which the
                # new subscription must invalidate in the worker that did not register it too
                async with httpx.AsyncClient(base_url=server.base, timeout=60,
                                             limits=httpx.Limits(max_connections=20)) as burst:
                    warm = await asyncio.gather(*(burst.post("/Observation", json=observation("p1"))
                                                  for _ in range(20)))
                assert all(a.status_code == 201 for a in warm)
                r = await c.post("/Subscription", json=topic(PATIENT_DATA_CHANGE, hook.url,
                                                             filters=["Observation?patient=p1"]))
                assert r.status_code == 201, r.text
                sub = r.json()["id"]
                await hook.wait_for(1, timeout=30)  # the handshake
                # many connections at once: the writes land on both workers
                async with httpx.AsyncClient(base_url=server.base, timeout=60,
                                             limits=httpx.Limits(max_connections=WRITES)) as burst:
                    answers = await asyncio.gather(*(burst.post("/Observation", json=observation("p1"))
                                                     for _ in range(WRITES)))
                assert all(a.status_code == 201 for a in answers)
                written = {a.json()["id"] for a in answers}
                deadline = asyncio.get_running_loop().time() + 60
                while True:
                    seen = {status_of(n)["events"][0]["event-number"] for n in hook.notifications()}
                    if len(seen) >= WRITES:
                        break
                    assert asyncio.get_running_loop().time() < deadline, sorted(seen, key=int)
                    await asyncio.sleep(0.2)
                assert sorted(int(n) for n in seen) == list(range(1, WRITES + 1))
                status = status_of((await c.get(f"/Subscription/{sub}/$status")).json())
                assert status["events-since-subscription-start"] == str(WRITES)
                events = (await c.get(f"/Subscription/{sub}/$events",
                                      params={"eventsSinceNumber": "1", "eventsUntilNumber": str(WRITES)})).json()
                numbers = [e["event-number"] for e in status_of(events)["events"]]
                assert numbers == [str(i) for i in range(1, WRITES + 1)]
                focus = [e["focus"]["reference"].rsplit("/", 1)[-1] for e in status_of(events)["events"]]
                assert sorted(focus) == sorted(written)  # each write once
