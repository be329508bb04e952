"""Confidential communications (ASCMI.md §6) through HTTP: request intake p50/p95, ``$communication-contact``
p50/p95 and the overdue search, against the ``GET /health`` round trip as baseline.

Population: ``n_people`` members; a quarter first file an AB 133 form naming a health plan (so their requests
make two Tasks and the intake reads their forms), every member then files one request (a mix of channels and
scopes), and a fifth file a second request that replaces the first (closing it and cancelling its Tasks).
Lookups ask about random members, labels and days.
"""

from __future__ import annotations

import random
import time
from datetime import date, timedelta
from typing import Any

import httpx

from benchmarks.stats import Row, latencies, p50_p95

CANONICAL = "https://ascmi.example.org/fhir"
NPI = "http://hl7.org/fhir/sid/us-npi"
PLAN = {"name": "Bench Health Plan", "identifiers": [{"system": NPI, "value": "1999000001"}], "type": "health-plan",
        "coveredEntity": True}
CLINIC = {"name": "Bench Clinic", "identifiers": [{"system": NPI, "value": "1999000002"}], "type": "provider",
          "coveredEntity": True}
ACKS = {"rightToRevoke": True, "redisclosureNotice": True, "noConditioning": True, "copyReceived": True}
LABELS = ["MH", "SEX", "STD", "SUD", "42CFRPart2", "GENDER", "SDV"]


def person(i: int) -> dict[str, Any]:
    return {"givenName": f"Given{i}", "familyName": f"Family{i}", "birthDate": f"19{60 + i % 40}-0{1 + i % 9}-1{i % 9}",
            "mediCalId": f"{80_000_000 + i}B", "email": f"member{i}@example.org"}


def form(i: int) -> dict[str, Any]:
    return {"formType": "AB133", "formVersion": "2025.1", "formId": f"BENCH-{i}", "signedDate": "2026-01-15",
            "individual": person(i), "collector": PLAN, "recipients": {"allCarePartners": True},
            "purposes": ["TREAT"], "categories": {"general-health": "share"}, "expiration": {"date": "2030-01-01"},
            "signature": {"signer": "individual", "method": "electronic", "date": "2026-01-15"},
            "acknowledgements": ACKS}


def request(i: int, n: int, received: date) -> dict[str, Any]:
    via = ["electronic", "phone", "mail"][i % 3]
    body: dict[str, Any] = {"requestId": f"BENCH-CC-{i}-{n}", "individual": person(i), "receivedBy": CLINIC,
                            "receivedDate": received.isoformat(), "receivedVia": via,
                            "designated": {"email": f"private{i}-{n}@example.net"}}
    if i % 4 == 1:
        body["scope"] = "all-communications"
    return body


def run(base: str, n_people: int = 200, n_lookups: int = 1000) -> list[Row]:
    root = base.removesuffix("/fhir")
    rng = random.Random(21)
    first = date(2026, 11, 2)
    with httpx.Client(timeout=60) as client:
        health = latencies(lambda: client.get(f"{root}/health"), 500)
        for i in range(0, n_people, 4):
            r = client.post(f"{root}/ascmi/forms", json=form(i), headers={"Prefer": "return=minimal"})
            assert r.status_code == 201, r.text
        intake: list[float] = []
        for i in range(n_people):
            t0 = time.perf_counter()
            r = client.post(f"{root}/ascmi/confidential-communications", json=request(i, 1, first),
                            headers={"Prefer": "return=minimal"})
            intake.append((time.perf_counter() - t0) * 1000)
            assert r.status_code == 201, r.text
        replace: list[float] = []
        for i in range(0, n_people, 5):
            t0 = time.perf_counter()
            r = client.post(f"{root}/ascmi/confidential-communications",
                            json=request(i, 2, first + timedelta(days=10)), headers={"Prefer": "return=minimal"})
            replace.append((time.perf_counter() - t0) * 1000)
            assert r.status_code == 201, r.text

        def lookup() -> None:
            i = rng.randrange(n_people)
            params = [{"name": "patient", "valueIdentifier": {"system": f"{CANONICAL}/sid/medi-cal-cin",
                                                              "value": f"{80_000_000 + i}B"}},
                      {"name": "time", "valueDateTime": (first + timedelta(days=rng.randrange(-3, 20))).isoformat()}]
            if rng.random() < 0.7:
                params.append({"name": "about", "valueCoding": {"system": "http://terminology.hl7.org/CodeSystem/"
                                                                          "v3-ActCode", "code": rng.choice(LABELS)}})
            r = client.post(f"{base}/Patient/$communication-contact",
                            json={"resourceType": "Parameters", "parameter": params})
            assert r.status_code == 200, r.text

        lookups = latencies(lookup, n_lookups)
        overdue = latencies(lambda: client.get(f"{base}/Task", params={
            "code": "fulfill", "status": "requested", "period": "lt2026-11-20", "_count": "50"}), 100)
    h50, _ = p50_p95(health)
    i50, i95 = p50_p95(intake)
    r50, r95 = p50_p95(replace)
    l50, l95 = p50_p95(lookups)
    o50, o95 = p50_p95(overdue)
    tasks = n_people + n_people // 4
    return [
        Row("baseline GET /health p50", f"{h50:.2f} ms"),
        Row("confidential-communications intake p50", f"{i50:.1f} ms", f"{i50 / h50:.0f}x",
            f"{n_people} requests, {tasks} Tasks"),
        Row("confidential-communications intake p95", f"{i95:.1f} ms", f"{i95 / h50:.0f}x"),
        Row("replacing request intake p50", f"{r50:.1f} ms", f"{r50 / h50:.0f}x", "closes the older, cancels Tasks"),
        Row("$communication-contact p50", f"{l50:.2f} ms", f"{l50 / h50:.1f}x"),
        Row("$communication-contact p95", f"{l95:.2f} ms", f"{l95 / h50:.1f}x"),
        Row("overdue Task search p50 (_count=50)", f"{o50:.2f} ms", f"{o50 / h50:.1f}x"),
        Row("overdue Task search p95", f"{o95:.2f} ms", f"{o95 / h50:.1f}x"),
    ]
