"""The floor under ingest (issue #16): what the stack DESIGN.md mandates costs on the compare.sh workload with
no FHIR logic at all, so the ratio targets against the peer can be judged against what the parts alone allow.

Each row is one part measured alone, per Consent, on 100-entry transaction Bundles of the stored-references
workload (``benchmarks.stored_refs``' Consents):

* **HTTP**: a uvicorn + FastAPI process (the same server stack and settings as ``fhir-server serve``) that reads
  the Bundle's bytes and answers a prepared response of the size this server's ``return=minimal`` transaction
  response has; one keep-alive ``http.client`` connection, as ``compare.sh``'s client. Wall time per Consent,
  and the server process's CPU (utime + stime from ``/proc``) per Consent.
* **JSON parse**: ``orjson.loads`` and the standard library with ``Decimal`` of the Bundle bytes.
* **jsonschema-rs**: the server's compiled R4 schema validator alone, per Consent.
* **SQLite**: raw ``sqlite3`` on the server's own schema (WAL, ``synchronous=FULL``), writing what the server
  writes per Consent (the resource row, the history row, 11 index rows) and one COMMIT per 100: wall and CPU.
* **GET round trip**: a trivial FastAPI route answering a 1 KiB searchset, p50 — the floor for
  ``Organization?identifier=``.

``python -m benchmarks.floor [BUNDLES=100]``; also the ``floor`` row of ``python -m benchmarks``.
"""

from __future__ import annotations

import http.client
import json
import os
import random
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
import uuid_utils

from benchmarks.load import consent
from benchmarks.server import free_port
from benchmarks.stats import Row, print_table

BUNDLE = 100

# The app the HTTP rows talk to: FastAPI on uvicorn, as the server, with nothing behind the routes.
APP = '''
import os
from fastapi import FastAPI, Request, Response

app = FastAPI()
POST_REPLY = b"x" * int(os.environ["FLOOR_POST_REPLY"])
GET_REPLY = b"x" * 1024

@app.post("/fhir")
async def post(request: Request) -> Response:
    await request.body()
    return Response(POST_REPLY, media_type="application/fhir+json")

@app.get("/fhir/Organization")
async def get() -> Response:
    return Response(GET_REPLY, media_type="application/fhir+json")
'''


def _bundles(count: int, rng: random.Random) -> list[bytes]:
    """Transaction Bundles of Consents referring to stored Patients and Organizations, as the client sends them."""
    out = []
    for _ in range(count):
        entries = [{"resource": consent(f"Patient/{rng.randrange(2000)}", f"org{rng.randrange(200)}",
                                        f"org{rng.randrange(200)}", rng),
                    "request": {"method": "POST", "url": "Consent"}} for _ in range(BUNDLE)]
        out.append(json.dumps({"resourceType": "Bundle", "type": "transaction", "entry": entries}).encode())
    return out


def _minimal_response_size() -> int:
    """Bytes of this server's transaction-response to a 100-Consent Bundle with ``Prefer: return=minimal``."""
    location = "Consent/0190c1e2-7a4b-7cde-8f01-23456789abcd/_history/1"
    entry = {"response": {"status": "201 Created", "location": location,
                          "etag": 'W/"1"', "lastModified": "2026-12-07T12:00:00.000000+00:00"}}
    return len(orjson.dumps({"resourceType": "Bundle", "type": "transaction-response", "entry": [entry] * BUNDLE}))


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextmanager
def _floor_app(post_reply: int) -> Iterator[tuple[int, int]]:
    """A uvicorn process serving :data:`APP`; yields (port, pid)."""
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "floor_app.py").write_text(APP)
        port = free_port()
        proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "floor_app:app", "--port", str(port), "--log-level", "warning",
             "--no-access-log"],
            cwd=tmp, env={**os.environ, "FLOOR_POST_REPLY": str(post_reply)},
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
                    conn.request("GET", "/fhir/Organization")
                    conn.getresponse().read()
                    conn.close()
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.1)
            yield port, proc.pid
        finally:
            proc.terminate()
            proc.wait(10)


def _http_rows(bundles: list[bytes]) -> list[Row]:
    with _floor_app(_minimal_response_size()) as (port, pid):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        headers = {"Content-Type": "application/fhir+json", "Prefer": "return=minimal"}
        for body in bundles[:5]:
            conn.request("POST", "/fhir", body=body, headers=headers)
            conn.getresponse().read()
        cpu0, t0 = _cpu_seconds(pid), time.perf_counter()
        for body in bundles:
            conn.request("POST", "/fhir", body=body, headers=headers)
            conn.getresponse().read()
        wall, cpu = time.perf_counter() - t0, _cpu_seconds(pid) - cpu0
        gets = []
        for i in range(2200):
            t = time.perf_counter()
            conn.request("GET", "/fhir/Organization?identifier=http://hl7.org/fhir/sid/us-npi|1000000007")
            conn.getresponse().read()
            if i >= 200:
                gets.append((time.perf_counter() - t) * 1000)
        conn.close()
    n = len(bundles) * BUNDLE
    return [
        Row("floor: HTTP POST of the Bundle bytes (wall)", f"{wall / n * 1e6:.1f} µs/Consent",
            note="uvicorn + FastAPI, body read, same-size reply, 1 client"),
        Row("floor: HTTP POST, server CPU", f"{cpu / n * 1e6:.1f} µs/Consent", note="utime + stime, /proc"),
        Row("floor: trivial GET round trip p50", f"{statistics.median(gets):.3f} ms",
            note="the floor under Organization?identifier="),
    ]


def _json_rows(bundles: list[bytes]) -> list[Row]:
    from fhir_server.fhir.jsonio import FHIRDecimal

    exact = json.JSONDecoder(parse_float=FHIRDecimal)
    n = len(bundles) * BUNDLE
    t0 = time.process_time()
    for body in bundles:
        orjson.loads(body)
    fast = time.process_time() - t0
    t0 = time.process_time()
    for body in bundles:
        exact.decode(body.decode())
    slow = time.process_time() - t0
    parsed = [json.loads(body) for body in bundles]
    t0 = time.process_time()
    for bundle in parsed:
        json.dumps(bundle).encode()
    client = time.process_time() - t0
    return [Row("floor: orjson.loads", f"{fast / n * 1e6:.1f} µs/Consent"),
            Row("floor: json + Decimal (the server's exact parse)", f"{slow / n * 1e6:.1f} µs/Consent"),
            Row("client: json.dumps of the Bundle", f"{client / n * 1e6:.1f} µs/Consent",
                note="compare.sh's client does this per request, for both servers")]


def _validation_row(bundles: list[bytes]) -> Row:
    from fhir_server.fhir.registry import _fast_validator

    validator = _fast_validator()
    resources = [e["resource"] for body in bundles for e in orjson.loads(body)["entry"]]
    assert all(validator.is_valid(r) for r in resources[:10])
    t0 = time.process_time()
    for r in resources:
        validator.is_valid(r)
    cpu = time.process_time() - t0
    return Row("floor: jsonschema-rs validation", f"{cpu / len(resources) * 1e6:.1f} µs/Consent",
               note="the server's compiled R4 schema")


def _sqlite_rows(bundles: list[bytes]) -> list[Row]:
    from fhir_server.fhir.search.index import extract

    prepared: list[list[tuple[str, bytes, Any]]] = []
    for body in bundles:
        batch = []
        for e in orjson.loads(body)["entry"]:
            r = {**e["resource"], "id": str(uuid_utils.uuid7())}  # the server's ids: UUIDv7
            batch.append((str(r["id"]), orjson.dumps(r), extract(r)))
        prepared.append(batch)
    rows_per = len(prepared[0][0][2])
    wall, cpu = _sqlite_write(prepared, with_index=True)
    bare_wall, bare_cpu = _sqlite_write(prepared, with_index=False)
    n = len(prepared) * BUNDLE
    note = f"resource + history + {rows_per} index rows per Consent, synchronous=FULL, a COMMIT per 100"
    return [Row("floor: sqlite3 inserts + commit (wall)", f"{wall / n * 1e6:.1f} µs/Consent", note=note),
            Row("floor: sqlite3 inserts + commit (CPU)", f"{cpu / n * 1e6:.1f} µs/Consent",
                note="process CPU; the rest of the wall time is the fsync"),
            Row("floor: sqlite3 without the index rows (CPU)", f"{bare_cpu / n * 1e6:.1f} µs/Consent",
                note=f"resource + history only (wall {bare_wall / n * 1e6:.1f} µs)")]


def _sqlite_write(prepared: list[list[tuple[str, bytes, Any]]], with_index: bool) -> tuple[float, float]:
    """Wall and process CPU seconds to write ``prepared`` into a fresh database with the server's schema."""
    from fhir_server.store.sqlite import index
    from fhir_server.store.sqlite.schema import RESOURCE_DDL
    from fhir_server.store.sqlite.subscriptions import DDL as SUBSCRIPTION_DDL

    with tempfile.TemporaryDirectory() as tmp:
        conn = sqlite3.connect(Path(tmp) / "floor.sqlite3", isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.executescript(RESOURCE_DDL + index.INDEX_DDL + SUBSCRIPTION_DDL)
        stamp = "2026-12-07T12:00:00.000000+00:00"
        wall0, cpu0 = time.perf_counter(), time.process_time()
        for batch in prepared:
            conn.execute("BEGIN IMMEDIATE")
            for id, body_bytes, rows in batch:
                rid = conn.execute("INSERT INTO resource (rtype, id, vid, last_updated, deleted, body)"
                                   " VALUES ('Consent', ?, 1, ?, 0, ?)", (id, stamp, body_bytes)).lastrowid
                conn.execute("INSERT INTO history (rtype, id, vid, last_updated, deleted, method, body)"
                             " VALUES ('Consent', ?, 1, ?, 0, 'POST', ?)", (id, stamp, body_bytes))
                assert rid is not None
                if with_index:
                    index.insert_index(conn, rid, "Consent", rows)
            conn.execute("COMMIT")
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
        conn.close()
    return wall, cpu


def measure(bundle_count: int = 100) -> list[Row]:
    bundles = _bundles(bundle_count, random.Random(16))
    return [*_http_rows(bundles), *_json_rows(bundles), _validation_row(bundles), *_sqlite_rows(bundles)]


def run(base: str) -> list[Row]:
    """The ``python -m benchmarks`` row: the parts alone (``base`` is not used: no FHIR server is involved)."""
    del base
    return measure()


if __name__ == "__main__":
    print_table(measure(int(sys.argv[1]) if len(sys.argv) > 1 else 100))
