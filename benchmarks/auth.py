"""Authentication cost (ACCESS.md §A; issue target: bearer-token validation ≤ 0.2 ms p50, and a request with
``FHIR_AUTH=smart`` within 10 % of the same request with ``FHIR_AUTH=off``).

In-process rows time :meth:`Security.authenticate` — what the authentication edge runs per request — for a known
token (the steady state) and for a token this worker sees for the first time (HS256 signature check, claims and
one look at the store's revoked-token list), for a client's token and for a person's (web page sign-in: the
user record instead of the client record), interleaved in one process so the ratio compares like with like.
The HTTP row reads one Patient by id, alternating between a server with auth off (the runner's) and one with
auth on (started here, with an administrator token from ``fhir-server token --admin``), so both share the noise.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from benchmarks.server import running_server
from benchmarks.stats import Row, p50_p95
from fhir_server.security.service import Security
from fhir_server.store.sqlite import SQLiteStore


async def _timings(sec: Security, tokens: list[str]) -> tuple[list[float], list[float]]:
    first: list[float] = []
    for token in tokens:  # each token seen for the first time: signature + claims + revocation list
        t0 = time.perf_counter()
        await sec.authenticate(f"Bearer {token}")
        first.append((time.perf_counter() - t0) * 1000)
    known: list[float] = []
    header = f"Bearer {tokens[0]}"
    for _ in range(20000):
        t0 = time.perf_counter()
        await sec.authenticate(header)
        known.append((time.perf_counter() - t0) * 1000)
    return known, first


async def _in_process() -> list[Row]:
    from fhir_server.security.clients import new_client
    from fhir_server.security.signin import PUBLIC_CLIENT_ID
    from fhir_server.security.users import new_user

    with tempfile.TemporaryDirectory() as tmp:
        store = SQLiteStore(Path(tmp) / "fhir.sqlite3")
        await store.open()
        try:
            sec = Security(store)
            await sec.open()
            client = new_client({"keys": []}, organization=None, keys_required=False)
            await sec.add_client(client)
            await sec.add_user(new_user("bench", "bench-password", organization="Organization/1"))
            samples: dict[str, tuple[list[float], list[float]]] = {"client": ([], []), "person": ([], [])}
            for _ in range(2):  # interleaved rounds: both kinds see the same machine
                for kind, sink in samples.items():
                    tokens = [await (sec.mint(client.client_id, {"*": "cruds"}, None, 300) if kind == "client"
                                     else sec.mint(PUBLIC_CLIENT_ID, {"*": "cruds"}, "TREAT", 900, user="bench"))
                              for _ in range(1000)]
                    known, first = await _timings(sec, tokens)
                    sink[0].extend(known)
                    sink[1].extend(first)
        finally:
            await store.close()
    k50, k95 = p50_p95(samples["client"][0])
    f50, f95 = p50_p95(samples["client"][1])
    pk50, pk95 = p50_p95(samples["person"][0])
    pf50, pf95 = p50_p95(samples["person"][1])
    return [Row("bearer token check, known token (per request)", f"{k50 * 1000:.1f} µs p50", f"p95 {k95 * 1000:.1f} µs",
                "target ≤ 200 µs"),
            Row("bearer token check, first sight (HS256 + claims + revoked?)", f"{f50 * 1000:.1f} µs p50",
                f"p95 {f95 * 1000:.1f} µs", "target ≤ 200 µs"),
            Row("person's token (web page), known", f"{pk50 * 1000:.1f} µs p50", f"{pk50 / k50:.2f}× client",
                f"p95 {pk95 * 1000:.1f} µs"),
            Row("person's token (web page), first sight", f"{pf50 * 1000:.1f} µs p50", f"{pf50 / f50:.2f}× client",
                f"p95 {pf95 * 1000:.1f} µs")]


def _read_rows(off_base: str) -> list[Row]:
    with tempfile.TemporaryDirectory() as tmp, running_server(Path(tmp), {"FHIR_AUTH": "smart"}) as on_base:
        token = subprocess.run([sys.executable, "-m", "fhir_server.cli", "token", "--admin", "--data-dir", tmp],
                               capture_output=True, text=True, check=True).stdout.strip()
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.Client(timeout=30) as c:
            on_id = c.post(f"{on_base}/Patient", json={"resourceType": "Patient"}, headers=headers).json()["id"]
            off_id = c.post(f"{off_base}/Patient", json={"resourceType": "Patient"}).json()["id"]
            on: list[float] = []
            off: list[float] = []
            for i in range(3000):
                for url, sink, h in ((f"{off_base}/Patient/{off_id}", off, {}),
                                     (f"{on_base}/Patient/{on_id}", on, headers)):
                    t0 = time.perf_counter()
                    r = c.get(url, headers=h)
                    if i >= 100:
                        sink.append((time.perf_counter() - t0) * 1000)
                    assert r.status_code == 200, r.text
    on50, _ = p50_p95(on)
    off50, _ = p50_p95(off)
    return [Row("read by id over HTTP, FHIR_AUTH=smart vs off", f"{on50:.2f} ms p50",
                f"{on50 / off50:.2f}× off", f"off: {off50:.2f} ms p50; target ≤ 1.10×")]


def run(base: str) -> list[Row]:
    return asyncio.run(_in_process()) + _read_rows(base)
