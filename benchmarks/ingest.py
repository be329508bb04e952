"""Ingest through transaction bundles of 100 entries (Patient + Organization + Consent + Provenance groups)."""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx

from benchmarks.stats import Row


def group(i: int) -> list[dict[str, Any]]:
    p, o, c = (f"urn:uuid:{uuid.uuid4()}" for _ in range(3))
    return [
        {"fullUrl": p, "request": {"method": "POST", "url": "Patient"},
         "resource": {"resourceType": "Patient", "identifier": [{"system": "urn:bench:cin", "value": f"{i:09d}"}],
                      "name": [{"family": f"Ingest{i}", "given": ["Ana"]}], "birthDate": "1980-02-03"}},
        {"fullUrl": o, "request": {"method": "POST", "url": "Organization"},
         "resource": {"resourceType": "Organization", "identifier": [{"system": "http://hl7.org/fhir/sid/us-npi",
                                                                    "value": f"{1000000000 + i}"}],
                      "name": f"Clinic {i}", "active": True}},
        {"fullUrl": c, "request": {"method": "POST", "url": "Consent"},
         "resource": {"resourceType": "Consent", "status": "active",
                      "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope",
                                            "code": "patient-privacy"}]},
                      "category": [{"coding": [{"system": "http://loinc.org", "code": "64292-6"}]}],
                      "patient": {"reference": p}, "dateTime": "2026-01-15", "organization": [{"reference": o}],
                      "policyRule": {"coding": [{"system": "https://ascmi.example.org/fhir/CodeSystem/ascmi-form",
                                                 "code": "AB133"}]},
                      "provision": {"type": "deny", "period": {"start": "2026-01-15", "end": "2027-01-15"},
                                    "provision": [{"type": "permit", "actor": [{"role": {"coding": [
                                        {"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
                                         "code": "IRCP"}]}, "reference": {"reference": o}}],
                                        "purpose": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActReason",
                                                     "code": "TREAT"}],
                                        "securityLabel": [{"system":
                                                           "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                                                           "code": "MH"}]}]}}},
        {"request": {"method": "POST", "url": "Provenance"},
         "resource": {"resourceType": "Provenance", "target": [{"reference": c}], "recorded": "2026-01-15T10:00:00Z",
                      "agent": [{"who": {"reference": o}}]}},
    ]


def bundle(start: int, groups: int = 25) -> dict[str, Any]:
    entries = [e for i in range(start, start + groups) for e in group(i)]
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


def run(base: str, bundles: int = 40) -> list[Row]:
    payloads = [bundle(b * 25) for b in range(bundles)]
    with httpx.Client(timeout=120) as client:
        r = client.post(base, json=bundle(10**6), headers={"Prefer": "return=minimal"})  # warm-up
        assert r.status_code == 200, r.text[:500]
        t0 = time.perf_counter()
        for payload in payloads:
            r = client.post(base, json=payload, headers={"Prefer": "return=minimal"})
            assert r.status_code == 200, r.text[:500]
        elapsed = time.perf_counter() - t0
    rate = bundles * 100 / elapsed
    return [Row("ingest: transaction of 100 entries", f"{rate:.0f} res/s", "",
                f"{bundles} bundles; target ≥ 2,000 res/s")]
