"""Labels at ingest: time the pure labeller takes per resource (ACCESS.md §C; issue target ≤ 50 µs p50).

In-process: the labeller is pure (the repository reads the ValueSets once per transaction), so HTTP would only
add noise. The ValueSets are the seed files of ``profiles/``; the resources are a mix of what ingest carries —
a labelled Condition (ICD-10-CM descendant), an HIV Observation (LOINC), an unlabelled Observation with
components, a MedicationRequest (RxNorm), an Encounter with several reasons, and a Patient (not labelled).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx

from benchmarks.stats import Row, latencies, p50_p95
from fhir_server.consent import sls
from fhir_server.repository.labels import CATEGORY_LABELS

PROFILES = Path(__file__).resolve().parents[1] / "profiles"
ICD = "http://hl7.org/fhir/sid/icd-10-cm"
SCT = "http://snomed.info/sct"
LOINC = "http://loinc.org"
RX = "http://www.nlm.nih.gov/research/umls/rxnorm"


def _cc(*codings: tuple[str, str]) -> dict[str, Any]:
    return {"coding": [{"system": s, "code": c, "display": "x"} for s, c in codings]}


RESOURCES: list[dict[str, Any]] = [
    {"resourceType": "Condition", "id": "c", "subject": {"reference": "Patient/p"},
     "category": [_cc(("http://terminology.hl7.org/CodeSystem/condition-category", "problem-list-item"))],
     "code": _cc((ICD, "F11.20"), (SCT, "75544000"))},
    {"resourceType": "Observation", "id": "o1", "status": "final", "subject": {"reference": "Patient/p"},
     "category": [_cc(("http://terminology.hl7.org/CodeSystem/observation-category", "laboratory"))],
     "code": _cc((LOINC, "75622-1")), "valueCodeableConcept": _cc((SCT, "260385009"))},
    {"resourceType": "Observation", "id": "o2", "status": "final", "subject": {"reference": "Patient/p"},
     "category": [_cc(("http://terminology.hl7.org/CodeSystem/observation-category", "vital-signs"))],
     "code": _cc((LOINC, "85354-9")),
     "component": [{"code": _cc((LOINC, "8480-6")), "valueQuantity": {"value": 120}},
                   {"code": _cc((LOINC, "8462-4")), "valueQuantity": {"value": 80}}]},
    {"resourceType": "MedicationRequest", "id": "m", "status": "active", "intent": "order",
     "subject": {"reference": "Patient/p"}, "medicationCodeableConcept": _cc((RX, "1819")),
     "reasonCode": [_cc((ICD, "F11.20"))]},
    {"resourceType": "Encounter", "id": "e", "status": "finished", "subject": {"reference": "Patient/p"},
     "type": [_cc((SCT, "185349003"))], "reasonCode": [_cc((ICD, "J06.9")), _cc((ICD, "Z30.09"))]},
    {"resourceType": "Patient", "id": "p", "name": [{"family": "Doe"}]},
]


def seed_labeller() -> sls.Labeller:
    value_sets = [json.loads(p.read_text()) for p in sorted(PROFILES.glob("ValueSet-ascmi-sls-*.json"))]
    return sls.compile_value_sets(value_sets, CATEGORY_LABELS)


def _http_rows(base: str) -> list[Row]:
    """Through a real server: a labelled create, and transaction ingest of labelled resources."""
    with httpx.Client(base_url=base, timeout=30) as c:
        patient = c.post("/Patient", json={"resourceType": "Patient"}).json()["id"]
        subject = {"reference": f"Patient/{patient}"}
        condition = {k: v for k, v in RESOURCES[0].items() if k != "id"} | {"subject": subject}
        l50, l95 = p50_p95(latencies(lambda: c.post("/Condition", json=condition), 300))
        entries = [{"request": {"method": "POST", "url": r["resourceType"]},
                    "resource": {k: v for k, v in r.items() if k != "id"} | {"subject": subject}}
                   for r in RESOURCES[:2] * 50]
        bundle = {"resourceType": "Bundle", "type": "transaction", "entry": entries}
        c.post("", json=bundle).raise_for_status()
        t0 = time.perf_counter()
        for _ in range(10):
            c.post("", json=bundle).raise_for_status()
        rate = 10 * len(entries) / (time.perf_counter() - t0)
    return [Row("HTTP create of a labelled Condition", f"{l50:.2f} ms p50", f"p95 {l95:.2f} ms"),
            Row("transaction ingest, 100 labelled Conditions/Observations", f"{rate:.0f} resources/s")]


def _in_transaction_rows() -> list[Row]:
    """``labels.apply`` as the write path calls it, in a SQLite transaction holding the seed ValueSets: the
    per-resource cost on ingest (the ValueSet version check is paid once per transaction)."""
    import asyncio
    import tempfile

    from fhir_server.repository import bootstrap, labels
    from fhir_server.store.sqlite import SQLiteStore

    async def measure() -> tuple[list[float], list[float]]:
        with tempfile.TemporaryDirectory() as tmp:
            store = SQLiteStore(Path(tmp) / "labels.sqlite3")
            await store.open()
            try:
                await bootstrap.load(store, "https://ascmi.example.org/fhir")
                samples, checks = [], []
                async with store.transaction() as tx:
                    for i in range(6000):
                        resource = RESOURCES[i % 2]
                        t0 = time.perf_counter()
                        await labels.apply(tx, resource)
                        samples.append((time.perf_counter() - t0) * 1000)
                    for _ in range(500):
                        t0 = time.perf_counter()
                        await labels.labeller(tx)
                        checks.append((time.perf_counter() - t0) * 1000)
                return samples[1000:], checks[50:]
            finally:
                await store.close()

    samples, checks = asyncio.run(measure())
    p50, p95 = p50_p95(samples)
    c50, c95 = p50_p95(checks)
    return [Row("labels.apply in a SQLite transaction (Condition/Observation)", f"{p50 * 1000:.1f} µs p50",
                f"{p95 * 1000:.1f} µs p95", "target ≤ 50 µs p50"),
            Row("ValueSet version check, once per write transaction (SQLite)", f"{c50 * 1000:.0f} µs p50",
                f"{c95 * 1000:.0f} µs p95")]


def run(base: str | None = None) -> list[Row]:
    labeller = seed_labeller()
    rows = []
    for resource in RESOURCES:
        samples = latencies(lambda r=resource: sls.merge(r, labeller.labels(r)), 5000, warmup=200)  # type: ignore[misc]
        p50, p95 = p50_p95(samples)
        found = ",".join(lab["code"] for lab in labeller.labels(resource)) or "none"
        rows.append(Row(f"label a {resource['resourceType']} ({found})", f"{p50 * 1000:.1f} µs p50",
                        f"{p95 * 1000:.1f} µs p95", "target ≤ 50 µs p50"))
    rows += _in_transaction_rows()
    if base is not None:
        rows += _http_rows(base)
    return rows


if __name__ == "__main__":
    from benchmarks.stats import print_table

    print_table(run())
