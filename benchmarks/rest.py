"""REST core: create/s and read-by-id p50/p95 through HTTP, against the /health round trip as baseline."""

from __future__ import annotations

import time

import httpx

from benchmarks.stats import Row, latencies, p50_p95


def patient(i: int) -> dict[str, object]:
    return {"resourceType": "Patient", "identifier": [{"system": "urn:bench", "value": f"p{i}"}],
            "name": [{"family": f"Family{i}", "given": ["Given"]}], "gender": "female",
            "birthDate": f"19{50 + i % 50}-0{1 + i % 9}-1{i % 9}"}


def run(base: str, n_create: int = 1000, n_read: int = 2000) -> list[Row]:
    root = base.removesuffix("/fhir")
    with httpx.Client(timeout=30) as client:
        health = latencies(lambda: client.get(f"{root}/health"), n_read)
        t0 = time.perf_counter()
        ids = []
        for i in range(n_create):
            r = client.post(f"{base}/Patient", json=patient(i), headers={"Prefer": "return=minimal"})
            assert r.status_code == 201, r.text
            ids.append(r.headers["location"].split("/")[-3])
        create_rate = n_create / (time.perf_counter() - t0)
        k = iter(range(10**9))
        reads = latencies(lambda: client.get(f"{base}/Patient/{ids[next(k) % len(ids)]}"), n_read)
    h50, _ = p50_p95(health)
    r50, r95 = p50_p95(reads)
    return [
        Row("baseline GET /health p50", f"{h50:.2f} ms"),
        Row("create Patient (sequential, fsync per write)", f"{create_rate:.0f} /s"),
        Row("read by id p50", f"{r50:.2f} ms", f"{r50 / h50:.1f}x", "target ≤ 2 ms"),
        Row("read by id p95", f"{r95:.2f} ms", f"{r95 / h50:.1f}x"),
    ]
