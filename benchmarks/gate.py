"""The cost of the consent gate: the same 20-entry search page for an administrator and for a Care Partner.

Data (SQLite, in process): 1,000 people each with an ASCMI form filed through the intake service (mental health
do-not-share for one in four of them) and 100 Observations each — 100,000 Observations, a tenth of them
labelled mental health, plus the forms' Patients, Consents, Provenances and Organizations. The Care Partner is
a network member health plan with purpose TREAT.

Measured per query, side by side: the searchset Bundle of ``Observation?subject=Patient/X&_count=20`` for a
random person, built by :func:`fhir_server.repository.search.search_bundle` exactly as the HTTP handler builds
it — the administrator's straight from the store, the Care Partner's through the gate (decisions, paging before
filtering, disclosed copies, the Bundle's confidentiality mark). The HTTP round trip around it is the same for
both callers, so it is left out: the difference of the two p50s is the gate's cost (target ≤ 2 ms).
Also: read by id both ways, and the Care Partner page when every decision misses the cache.

``python -m benchmarks gate`` (the runner's server process is not used: this workload runs in process).
"""

from __future__ import annotations

import asyncio
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.stats import Row, p50_p95

PEOPLE = int(__import__("os").environ.get("GATE_BENCH_PEOPLE", "1000"))
PER_PERSON = 100
N = 300
NPI = "http://hl7.org/fhir/sid/us-npi"
CIN = "https://ascmi.example.org/fhir/sid/medi-cal-cin"
MH = [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "MH"}]
CATEGORIES = ("general-health", "mental-health", "substance-use-part2", "substance-use", "hiv", "sti",
              "reproductive-health", "gender-affirming-care", "intimate-partner-violence", "social-services",
              "developmental-services", "education")
PLAN = {"name": "Benchmark Health Plan", "identifiers": [{"system": NPI, "value": "1999000001"}],
        "type": "health-plan", "coveredEntity": True}
CLINIC = {"name": "Benchmark Clinic", "identifiers": [{"system": NPI, "value": "1999000002"}],
          "type": "provider", "coveredEntity": True}


def _form(i: int) -> dict[str, Any]:
    categories = {c: "share" for c in CATEGORIES}
    if i % 4 == 0:
        categories["mental-health"] = "do-not-share"
    return {
        "formType": "NON-AB133", "formVersion": "2025.1", "formId": f"B-{i}", "signedDate": "2025-01-02",
        "individual": {"givenName": f"Given{i}", "familyName": f"Family{i}", "birthDate": "1970-01-01",
                       "mediCalId": f"{i:08d}B"},
        "collector": CLINIC, "recipients": {"allCarePartners": True}, "purposes": ["TREAT", "COC"],
        "categories": categories, "expiration": {"date": "2031-01-01"},
        "signature": {"signer": "individual", "method": "electronic", "date": "2025-01-02"},
        "acknowledgements": {"rightToRevoke": True, "redisclosureNotice": True, "noConditioning": True,
                             "copyReceived": True},
    }


async def _load(store: Any, settings: Any) -> tuple[list[str], str]:
    from fhir_server.ascmi.intake import Intake
    from fhir_server.fhir.search.api import parse_search
    from fhir_server.repository import bootstrap
    from fhir_server.repository import resources as repo

    await bootstrap.load(store, settings.canonical_base, True)
    intake = Intake(store, settings, "http://bench/fhir")
    patients: list[str] = []
    for i in range(PEOPLE):
        await intake.file_form(_form(i), prefer_return="minimal")
        page = await store.search(parse_search("Patient", [("identifier", f"{CIN}|{i:08d}B")]))
        pid = page.matches[0].id
        patients.append(pid)
        async with store.transaction() as tx:
            for k in range(PER_PERSON):
                obs: dict[str, Any] = {"resourceType": "Observation", "status": "final",
                                       "code": {"coding": [{"system": "http://loinc.org", "code": f"{k % 50}-0"}]},
                                       "subject": {"reference": f"Patient/{pid}"}}
                if k % 10 == 3:
                    obs["meta"] = {"security": MH}
                await repo.create(tx, obs, check_refs=False)
        if i % 100 == 99:
            print(f"  {i + 1} people loaded", file=sys.stderr, flush=True)
    page = await store.search(parse_search("Organization", [("identifier", f"{NPI}|1999000002")]))
    return patients, f"Organization/{page.matches[0].id}"


async def _measure() -> list[Row]:
    from fhir_server.consent.gate import Gate
    from fhir_server.fhir.search.api import parse_search
    from fhir_server.repository.search import search_bundle
    from fhir_server.security.caller import ADMINISTRATOR, Caller
    from fhir_server.settings import Settings
    from fhir_server.store.sqlite import SQLiteStore

    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp), auth="off")
        store = SQLiteStore(settings.sqlite_path)
        await store.open()
        try:
            t0 = time.perf_counter()
            patients, clinic = await _load(store, settings)
            load_s = time.perf_counter() - t0
            gate = Gate(store, settings)
            partner = Caller("bench-partner", clinic, {"*": "rs"}, "TREAT")
            rng = random.Random(11)

            async def one(caller: Caller, pid: str | None = None) -> dict[str, Any]:
                query = f"subject=Patient/{pid or rng.choice(patients)}&_count=20"
                return await search_bundle(store, "Observation", query, "http://bench/fhir", settings,
                                           gate=gate, caller=caller)

            async def page_ms(caller: Caller, pid: str) -> float:
                t = time.perf_counter()
                bundle = await one(caller, pid)
                elapsed = (time.perf_counter() - t) * 1000
                assert len(bundle.get("entry", [])) == 20
                return elapsed

            for pid in patients:  # warm the page cache of every table both callers touch, and the gate's caches
                await one(ADMINISTRATOR, pid)
                await one(partner, pid)
            admin, cp, diffs = [], [], []
            for _ in range(N):  # interleaved, the same page for both: load on the shared machine hits both alike
                pid = rng.choice(patients)
                a = await page_ms(ADMINISTRATOR, pid)
                c = await page_ms(partner, pid)
                admin.append(a)
                cp.append(c)
                diffs.append(c - a)
            cold_gate = []
            for _ in range(50):
                gate._decisions.clear()
                t = time.perf_counter()
                await one(partner)
                cold_gate.append((time.perf_counter() - t) * 1000)
            ref = {"id": (await store.search(parse_search("Observation", [("subject", f"Patient/{patients[1]}")],
                                                          strict=True))).matches[0].id}

            async def read(caller: Caller) -> None:
                version = await store.read("Observation", ref["id"])
                if await gate.can_see(caller, version):
                    assert version is not None
                    gate.disclosed(caller, version)

            read_admin = [await _time(read, ADMINISTRATOR) for _ in range(N)]
            read_cp = [await _time(read, partner) for _ in range(N)]
        finally:
            await store.close()
    a50, a95 = p50_p95(admin)
    c50, c95 = p50_p95(cp)
    d50, _ = p50_p95(diffs)
    k50, k95 = p50_p95(cold_gate)
    r50, _ = p50_p95(read_admin)
    s50, _ = p50_p95(read_cp)
    return [
        Row("gate: load", f"{load_s:.0f} s", "", f"{PEOPLE} forms + {PEOPLE * PER_PERSON} Observations"),
        Row("gate: 20-entry page, administrator p50 / p95", f"{a50:.2f} / {a95:.2f} ms"),
        Row("gate: 20-entry page, Care Partner p50 / p95", f"{c50:.2f} / {c95:.2f} ms", f"{c50 / a50:.2f}x",
            f"p50 of the paired differences {d50:+.2f} ms (target ≤ 2 ms)"),
        Row("gate: 20-entry page, Care Partner, decision cache cold p50 / p95", f"{k50:.2f} / {k95:.2f} ms"),
        Row("gate: read by id, administrator / Care Partner p50", f"{r50:.3f} / {s50:.3f} ms",
            f"{s50 / r50:.1f}x", f"difference {s50 - r50:+.3f} ms"),
    ]


async def _time(fn: Any, caller: Any) -> float:
    t = time.perf_counter()
    await fn(caller)
    return (time.perf_counter() - t) * 1000


def run(base: str) -> list[Row]:
    del base  # in process: the server process the runner started is not used
    print("  loading 1,000 forms and 100,000 Observations in process …", file=sys.stderr, flush=True)
    return asyncio.run(_measure())


if __name__ == "__main__":  # pragma: no cover - a manual tool
    from benchmarks.stats import print_table

    print_table(run(""))
