"""Conditional create: what ``If-None-Exist`` costs against a plain create in the same run, and N identical
conditional creates at once (one must create, the others answer 200 with it; on MongoDB the losers of the claim
run again)."""

from __future__ import annotations

import statistics
import time
from concurrent.futures import ThreadPoolExecutor

import httpx

from benchmarks.rest import patient
from benchmarks.stats import Row

RACERS = 8


def _rate(client: httpx.Client, base: str, n: int, offset: int, conditional: bool, expect: int) -> float:
    t0 = time.perf_counter()
    for i in range(offset, offset + n):
        headers = {"Prefer": "return=minimal"}
        if conditional:
            headers["If-None-Exist"] = f"identifier=urn:bench|p{i}"
        r = client.post(f"{base}/Patient", json=patient(i), headers=headers)
        assert r.status_code == expect, r.text
    return n / (time.perf_counter() - t0)


def _race(base: str, value: str) -> tuple[float, list[int]]:
    body = {"resourceType": "Patient", "identifier": [{"system": "urn:race", "value": value}]}

    def one(_: int) -> int:
        with httpx.Client(timeout=60) as own:  # one connection each: real concurrency
            return own.post(f"{base}/Patient", json=body, headers={"If-None-Exist": f"identifier=urn:race|{value}",
                                                                  "Prefer": "return=minimal"}).status_code

    with ThreadPoolExecutor(RACERS) as pool:
        t0 = time.perf_counter()
        statuses = sorted(pool.map(one, range(RACERS)))
        return (time.perf_counter() - t0) * 1000, statuses


def run(base: str, n: int = 300, rounds: int = 20) -> list[Row]:
    with httpx.Client(timeout=30) as client:
        _rate(client, base, 20, 10**6, False, 201)  # warm-up
        plain = _rate(client, base, n, 0, False, 201)
        created = _rate(client, base, n, n, True, 201)
        matched = _rate(client, base, n, n, True, 200)
    times, duplicates = [], 0
    for k in range(rounds):
        ms, statuses = _race(base, f"r{k}")
        times.append(ms)
        duplicates += statuses.count(201) - 1
        assert set(statuses) <= {200, 201}, statuses
    return [
        Row("create Patient (sequential)", f"{plain:.0f} /s"),
        Row("conditional create that creates", f"{created:.0f} /s", f"{plain / created:.2f}x"),
        Row("conditional create that matches (200)", f"{matched:.0f} /s", f"{plain / matched:.2f}x"),
        Row(f"{RACERS} identical conditional creates at once, p50", f"{statistics.median(times):.1f} ms"),
        Row(f"duplicates over {rounds} races", str(duplicates), note="must be 0"),
    ]
