"""What the SQLite page cache size (``FHIR_SQLITE_CACHE_MIB``) costs in read, search and write latency.

``python -m benchmarks.sqlite_cache [patients]`` loads one store larger than the small cache (``benchmarks.load``:
Organizations, Patients and five Consents each), then serves it with each cache size in turn — alternating,
A B A B, so drift on a shared machine hits both — and measures, from one client, reads by id and searches over
random patients (so most pages are not in a small cache and come from the operating system's file cache) and
single-resource writes (one fsync each). It prints p50/p95 per size, the ratio of each to the largest cache in
the same run, and the worker's RSS after the run: the memory the cache saves.
"""

from __future__ import annotations

import random
import sys
import tempfile
import time
from pathlib import Path

import httpx

from benchmarks.load import load
from benchmarks.mixed import rss_kb
from benchmarks.rest import patient
from benchmarks.server import running_server
from benchmarks.stats import Row, latencies, p50_p95, print_table

SIZES = (64, 8)  # MiB per connection: the old default, the new one
ROUNDS = 2


def _server_pid(port: str) -> int | None:
    """The server process listening on ``port`` (its command line names it)."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if b"serve" in cmdline and port.encode() in cmdline:
                return int(entry.name)
    return None


def measure(base: str, patients: list[str], n: int, rng: random.Random) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {}
    with httpx.Client(timeout=60) as client:
        def get(url: str) -> None:
            r = client.get(url)
            assert r.status_code == 200, r.text[:300]

        out["read"] = latencies(lambda: get(f"{base}/Patient/{rng.choice(patients)}"), n)
        out["search"] = latencies(lambda: get(f"{base}/Consent?patient=Patient/{rng.choice(patients)}"), n)
        k = iter(range(10**9))

        def write() -> None:
            r = client.post(f"{base}/Patient", json=patient(next(k)), headers={"Prefer": "return=minimal"})
            assert r.status_code == 201, r.text[:300]

        out["write"] = latencies(write, n // 4, warmup=5)
    return out


def main(argv: list[str]) -> int:
    n_patients = int(argv[0]) if argv else 5000
    rng = random.Random(11)
    samples: dict[tuple[int, str], list[float]] = {}
    rss: dict[int, list[int]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp)
        t0 = time.perf_counter()
        with running_server(data_dir) as base:
            data = load(base, patients=n_patients, orgs=max(10, n_patients // 10), log=False)
        size_mb = (data_dir / "fhir.sqlite3").stat().st_size / 2**20
        print(f"loaded {data.resources} resources ({size_mb:.0f} MB file) in {time.perf_counter() - t0:.0f} s",
              file=sys.stderr)
        for _ in range(ROUNDS):
            for mib in SIZES:
                with running_server(data_dir, env={"FHIR_SQLITE_CACHE_MIB": str(mib)}) as base:
                    for kind, values in measure(base, data.patients, 2000, rng).items():
                        samples.setdefault((mib, kind), []).extend(values)
                    pid = _server_pid(base.split(":")[-1].split("/")[0])
                    kb = rss_kb(pid) if pid is not None else None
                    if kb is not None:
                        rss.setdefault(mib, []).append(kb)
    rows = [Row("store file", f"{size_mb:.0f} MB", note=f"{data.resources} resources")]
    largest = max(SIZES)
    for kind in ("read", "search", "write"):
        base50, base95 = p50_p95(samples[(largest, kind)])
        for mib in SIZES:
            p50, p95 = p50_p95(samples[(mib, kind)])
            rows.append(Row(f"{kind} p50 / p95, cache {mib} MiB", f"{p50:.2f} / {p95:.2f} ms",
                            f"{p50 / base50:.2f}x", f"p95 {p95 / base95:.2f}x of {largest} MiB"))
    for mib in SIZES:
        if rss.get(mib):
            rows.append(Row(f"server RSS after the run, cache {mib} MiB", f"{max(rss[mib]) / 1024:.0f} MB"))
    print_table(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
