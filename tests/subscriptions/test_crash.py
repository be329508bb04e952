"""kill -9 of a real ``fhir-server serve`` while a notification is in flight: after a restart on the same store,
the committed write is notified (at least once, with the same event number)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest

from tests.conftest import STORE
from tests.subscriptions.support import PATIENT_DATA_CHANGE, free_port, observation, receiver, status_of, topic


async def _start(data_dir: Path, env: dict[str, str]) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    command = Path(sys.executable).with_name("fhir-server")
    proc = subprocess.Popen([str(command), "serve", "--port", str(port), "--data-dir", str(data_dir)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, **env})
    base = f"http://127.0.0.1:{port}/fhir"
    deadline = time.monotonic() + 30
    async with httpx.AsyncClient() as c:
        while time.monotonic() < deadline:
            assert proc.poll() is None, f"fhir-server exited with {proc.returncode}"
            try:
                if (await c.get(f"{base}/metadata", timeout=1)).status_code == 200:
                    return proc, base
            except httpx.TransportError:
                await asyncio.sleep(0.1)
    proc.kill()
    raise AssertionError("fhir-server did not answer within 30 s")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.mark.slow
async def test_kill_9_between_commit_and_delivery_loses_nothing(tmp_path: Path, request: pytest.FixtureRequest
                                                                 ) -> None:
    env = {"FHIR_AUTH": "off", "FHIR_LOAD_CONFORMANCE": "false", "FHIR_SUBSCRIPTION_RETRY_SECONDS": "0.2",
           "FHIR_SUBSCRIPTION_POLL_SECONDS": "0.2"}
    if STORE == "mongo":
        env |= {"MONGODB_URI": request.getfixturevalue("mongo_uri"), "MONGODB_DATABASE": f"crash_{uuid.uuid4().hex}"}
    async with receiver() as hook:
        proc, base = await _start(tmp_path, env)
        try:
            async with httpx.AsyncClient(base_url=base, timeout=10) as c:
                await c.put(f"{base}/Patient/p1", json={"resourceType": "Patient", "id": "p1"})
                hook.script = [200]  # the handshake
                hook.delay = 0.0
                r = await c.post(f"{base}/Subscription", json=topic(
                    PATIENT_DATA_CHANGE, hook.url, filters=["Observation?patient=p1"], timeout=2))
                assert r.status_code == 201, r.text
                await hook.wait_for(1)
                await asyncio.sleep(0.5)
                hook.delay = 30.0  # the event's delivery will hang: the server is killed while it waits
                obs = await c.post(f"{base}/Observation", json=observation("p1"))
                assert obs.status_code == 201
            await hook.wait_for(2)
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
        finally:
            _stop(proc)
        hook.delay = 0.0
        proc, base = await _start(tmp_path, env)
        try:
            reqs = await hook.wait_for(3, timeout=30)
            again = status_of(reqs[2].json())
            assert again["type"] == "event-notification"
            assert again["events"][0]["event-number"] == "1"
            assert again["events"][0]["focus"]["reference"].endswith(f"/Observation/{obs.json()['id']}")
        finally:
            _stop(proc)
