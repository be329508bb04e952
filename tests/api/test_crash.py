"""A transaction survives a crash as all or nothing: SIGKILL the real server while it writes a large transaction,
restart it on the same data directory, and count what the store holds."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.support import free_port

PATIENTS = 5000  # and as many Observations: ~5 s of writing on a laptop


def start_server(data_dir: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    command = Path(sys.executable).with_name("fhir-server")
    proc = subprocess.Popen([str(command), "serve", "--port", str(port), "--data-dir", str(data_dir)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, "FHIR_AUTH": "off"})
    base = f"http://127.0.0.1:{port}/fhir"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"fhir-server exited with {proc.returncode}"
        try:
            if httpx.get(f"{base}/metadata", timeout=1).status_code == 200:
                return proc, base
        except httpx.TransportError:
            time.sleep(0.1)
    proc.kill()
    raise AssertionError("fhir-server did not answer within 20 s")


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def large_transaction(n: int) -> dict[str, Any]:
    entries: list[dict[str, Any]] = []
    for i in range(n):
        temp = f"urn:uuid:{uuid.uuid4()}"
        entries.append({"fullUrl": temp, "request": {"method": "POST", "url": "Patient"},
                        "resource": {"resourceType": "Patient", "gender": "female",
                                     "identifier": [{"system": "https://example.org/mrn", "value": f"crash-{i}"}]}})
        entries.append({"request": {"method": "POST", "url": "Observation"},
                        "resource": {"resourceType": "Observation", "status": "final", "code": {"text": "pulse"},
                                     "subject": {"reference": temp}}})
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


def writing(db: Path) -> bool:
    """True while another connection holds SQLite's write lock, i.e. the server is inside a transaction."""
    conn = sqlite3.connect(db, timeout=0, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("ROLLBACK")
        return False
    except sqlite3.OperationalError as exc:
        if "locked" in str(exc) or "busy" in str(exc):
            return True
        raise
    finally:
        conn.close()


def counts(db: Path) -> dict[str, int]:
    with sqlite3.connect(db) as conn:
        found = dict(conn.execute("SELECT rtype, count(*) FROM resource GROUP BY rtype").fetchall())
        found["history"] = conn.execute(  # the server seeds terminology of its own at startup
            "SELECT count(*) FROM history WHERE rtype IN ('Patient', 'Observation')").fetchone()[0]
        return found


def kill_mid_transaction(data_dir: Path, bundle: dict[str, Any], delay: float) -> bool:
    """Send ``bundle``, SIGKILL the server ``delay`` s after it starts writing; True if the kill beat the commit."""
    proc, base = start_server(data_dir)
    db = data_dir / "fhir.sqlite3"
    outcome: dict[str, Any] = {}

    def send() -> None:
        try:
            outcome["response"] = httpx.post(base, json=bundle, timeout=120)
        except httpx.HTTPError as exc:
            outcome["error"] = exc

    sender = threading.Thread(target=send, daemon=True)
    try:
        sender.start()
        deadline = time.monotonic() + 60
        while not writing(db):
            assert sender.is_alive() and time.monotonic() < deadline, f"the transaction never started: {outcome}"
            time.sleep(0.01)
        time.sleep(delay)
        landed = writing(db)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        sender.join(timeout=30)
    finally:
        stop(proc)
    return landed and "response" not in outcome


def test_a_transaction_killed_mid_write_leaves_all_or_nothing(tmp_path: Path) -> None:
    bundle = large_transaction(PATIENTS)
    for attempt, delay in enumerate((1.0, 0.3, 0.05)):
        data_dir = tmp_path / f"attempt-{attempt}"
        if kill_mid_transaction(data_dir, bundle, delay):
            break
    else:
        pytest.fail("could not SIGKILL the server while it was writing the transaction")
    proc, base = start_server(data_dir)
    try:
        on_disk = counts(data_dir / "fhir.sqlite3")
        patients = httpx.get(f"{base}/Patient/_history", params={"_count": 1}, timeout=30).json()["total"]
        observations = httpx.get(f"{base}/Observation/_history", params={"_count": 1}, timeout=30).json()["total"]
    finally:
        stop(proc)
    assert (patients, observations) in ((0, 0), (PATIENTS, PATIENTS)), (patients, observations)
    assert on_disk.get("history", 0) == patients + observations
    assert on_disk.get("Patient", 0) == patients and on_disk.get("Observation", 0) == observations
