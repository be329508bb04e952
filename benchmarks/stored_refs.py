"""Ingest of Consents that refer to *stored* Patients and Organizations (issue #16), and the same at scale.

The shape of an HIE's nightly feed and of ``../shared/bench/compare.sh``: people and organizations are already
on the server; 100-entry transaction Bundles of Consents refer to them as ``Patient/<id>`` and
``Organization/<id>``, so every write is validated, labelled, reference-checked against the store, indexed
(11 index rows per Consent) and committed with ``synchronous=FULL``.

``run`` (the ``make bench`` row): 200 Organizations and 2,000 Patients, then 10,000 Consents, one client.

On demand (not in CI), the large scale::

    python -m benchmarks.stored_refs [CONSENTS=1000000] [PEOPLE=250000] [CONCURRENCY=2] [DATA_DIR]

loads PEOPLE Patients (with a CIN identifier, as ASCMI has) and PEOPLE/100 Organizations, then CONSENTS
Consents, all through HTTP, and prints the load time, ``Consent?patient=`` p50, ``Consent/$decide`` p50
(random people, a recipient Organization, TREAT; these Consents are not ASCMI-mapped, so this measures the
look-up and evaluation path, not a rich policy) and the keyset page 1,000 vs page 1 of ``Consent?status=active``.
"""

from __future__ import annotations

import random
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

from benchmarks.load import ACT_REASON, NPI, organization, patient
from benchmarks.load import consent as consent_body
from benchmarks.server import running_server
from benchmarks.stats import Row, latencies, p50_p95

CIN = "https://ascmi.example.org/fhir/sid/cin"
BUNDLE = 100


def _transaction(client: httpx.Client, base: str, resources: list[dict[str, Any]]) -> list[str]:
    """POST one transaction of creates; the server-assigned ids, in order."""
    bundle = {"resourceType": "Bundle", "type": "transaction",
              "entry": [{"resource": r, "request": {"method": "POST", "url": r["resourceType"]}} for r in resources]}
    r = client.post(base, json=bundle, headers={"Prefer": "return=minimal"})
    if r.status_code != 200:
        raise RuntimeError(f"transaction failed: {r.status_code} {r.text[:500]}")
    return [e["response"]["location"].split("/")[1] for e in r.json()["entry"]]


def _people(base: str, people: int, orgs: int, rng: random.Random) -> tuple[list[str], list[str]]:
    org_ids: list[str] = []
    patient_ids: list[str] = []
    with httpx.Client(timeout=300) as client:
        for start in range(0, orgs, BUNDLE):
            batch = []
            for i in range(start, min(orgs, start + BUNDLE)):
                o = organization(i, rng)
                del o["id"]
                batch.append(o)
            org_ids += _transaction(client, base, batch)
        for start in range(0, people, BUNDLE):
            batch = []
            for i in range(start, min(people, start + BUNDLE)):
                p = patient(i, "Stored", rng)
                p["identifier"].append({"system": CIN, "value": f"CIN{i:09d}"})
                batch.append(p)
            patient_ids += _transaction(client, base, batch)
    return org_ids, patient_ids


def _consents(base: str, n: int, patients: list[str], orgs: list[str], concurrency: int, seed: int,
              log: bool) -> float:
    """Load ``n`` Consents in 100-entry transactions over ``concurrency`` connections; seconds taken."""
    bundles = (n + BUNDLE - 1) // BUNDLE

    def work(worker: int) -> None:
        rng = random.Random(seed * 1000 + worker)
        with httpx.Client(timeout=300) as client:
            for b in range(worker, bundles, concurrency):
                size = min(BUNDLE, n - b * BUNDLE)
                batch = [consent_body(f"Patient/{rng.choice(patients)}", rng.choice(orgs), rng.choice(orgs), rng)
                         for _ in range(size)]
                _transaction(client, base, batch)
                if log and worker == 0 and b % (concurrency * 200) == 0:
                    print(f"  {b * BUNDLE:,} Consents, {b * BUNDLE / (time.perf_counter() - t0):,.0f}/s",
                          file=sys.stderr, flush=True)

    t0 = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(work, range(concurrency)))
    return time.perf_counter() - t0


def run(base: str, consents: int = 10_000, people: int = 2_000) -> list[Row]:
    rng = random.Random(16)
    orgs, patients = _people(base, people, max(1, people // 10), rng)
    seconds = _consents(base, consents, patients, orgs, 1, 16, log=False)
    return [Row("ingest: Consents referring to stored resources", f"{consents / seconds:.0f} res/s", "",
                f"{consents:,} Consents in 100-entry transactions, one client; compare.sh's workload")]


def scale(consents: int, people: int, concurrency: int, data_dir: Path) -> list[Row]:
    rng = random.Random(250)
    with running_server(data_dir) as base, httpx.Client(timeout=60) as client:
        t0 = time.perf_counter()
        orgs, patients = _people(base, people, max(1, people // 100), rng)
        people_s = time.perf_counter() - t0
        consent_s = _consents(base, consents, patients, orgs, concurrency, 250, log=True)
        total = client.get(f"{base}/Consent?_summary=count").json()["total"]
        assert total >= consents, (total, consents)

        by_patient = latencies(lambda: client.get(f"{base}/Consent?patient={rng.choice(patients)}&_count=20"), 500)
        cins = [f"CIN{rng.randrange(people):09d}" for _ in range(600)]
        k = iter(range(10**9))

        def decide() -> None:
            body = {"resourceType": "Parameters", "parameter": [
                {"name": "patient", "valueIdentifier": {"system": CIN, "value": cins[next(k)]}},
                {"name": "recipient", "valueIdentifier": {"system": NPI,
                                                          "value": f"{1_000_000_000 + rng.randrange(len(orgs))}"}},
                {"name": "purpose", "valueCoding": {"system": ACT_REASON, "code": "TREAT"}}]}
            r = client.post(f"{base}/Consent/$decide", json=body)
            assert r.status_code == 200, r.text[:300]

        decisions = latencies(decide, 500)
        url: str | None = f"{base}/Consent?status=active&_count=20"
        pages: list[float] = []
        while url is not None and len(pages) < 1000:
            t = time.perf_counter()
            page = client.get(url).json()
            pages.append((time.perf_counter() - t) * 1000)
            url = next((link["url"] for link in page.get("link", []) if link["relation"] == "next"), None)
    p50, _ = p50_p95(by_patient)
    d50, _ = p50_p95(decisions)
    first = min(pages[:5])
    last = min(pages[-5:])
    return [
        Row("scale: load people + organizations", f"{people_s:.0f} s", "", f"{people:,} Patients"),
        Row("scale: load Consents", f"{consent_s:.0f} s", "",
            f"{consents:,} Consents ({consents / consent_s:,.0f}/s, {concurrency} clients)"),
        Row("scale: Consent?patient= p50", f"{p50:.2f} ms", "", "target ≤ 5 ms"),
        Row("scale: $decide p50", f"{d50:.2f} ms", "", "target ≤ 5 ms"),
        Row(f"scale: keyset page {len(pages)} vs page 1", f"{last:.2f} ms", f"{last / first:.1f}x",
            f"page 1: {first:.2f} ms (best of 5 each)"),
    ]


def main(argv: list[str]) -> int:
    from benchmarks.stats import print_table

    consents = int(argv[0]) if argv else 1_000_000
    people = int(argv[1]) if len(argv) > 1 else 250_000
    concurrency = int(argv[2]) if len(argv) > 2 else 2
    if len(argv) > 3:
        print_table(scale(consents, people, concurrency, Path(argv[3])))
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        print_table(scale(consents, people, concurrency, Path(tmp)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
