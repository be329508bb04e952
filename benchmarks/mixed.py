"""Mixed load and soak: 70 % reads and searches, 20 % transaction Bundles, 10 % ASCMI intake and ``$decide``.

``python -m benchmarks.mixed [--seconds 600] [--clients 64] [--workers 2] [--auth]`` starts ``fhir-server serve
--workers N`` on a fresh SQLite directory, seeds it, and drives it from ``--clients`` concurrent clients; it
prints p50/p99 per kind, errors (any 5xx, transport error or timeout is one), throughput and each worker's RSS
after warm-up and at the end. ``tests/ops/test_load.py`` runs a short version in ``make test`` and the crash
variant (kill -9 a worker, then the whole server, under this load).

Why an asyncio httpx generator rather than locust: httpx is already what the tests use, so the test and the
benchmark share one generator without a new dependency (locust brings gevent, whose monkey-patching does not
mix with the pytest-asyncio process the short version runs in); one event loop holds 64 clients on a fraction of
one core, leaving the machine's two cores to the server; and the generator records exactly what the crash check
needs — which writes the server acknowledged — which a locust run would need custom hooks for. Latency is
measured per request from send to full body, as a client sees it (coordinated omission: each client sends its
next request only when the previous answered, as FHIR clients do).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import re
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from benchmarks.stats import percentile

CANONICAL = "https://ascmi.example.org/fhir"
CIN = f"{CANONICAL}/sid/medi-cal-cin"
NPI = "http://hl7.org/fhir/sid/us-npi"
ACT_REASON = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
TXN = "https://load.example.org/transaction"  # identifier system marking every entry of one load transaction
MRN = "https://load.example.org/mrn"
BALP_AUTHZ = "https://profiles.ihe.net/ITI/BALP/CodeSystem/AuthZsubType"
COLLECTOR = {"name": "Load Test Clinic", "identifiers": [{"system": NPI, "value": "1300000001"}],
             "type": "provider", "coveredEntity": True}
CATEGORIES = ["general-health", "mental-health", "substance-use-part2", "substance-use", "hiv", "sti",
              "reproductive-health", "gender-affirming-care", "intimate-partner-violence", "social-services",
              "developmental-services", "education"]
ACKS = {"rightToRevoke": True, "redisclosureNotice": True, "noConditioning": True, "copyReceived": True}
KINDS = {"read": 35, "search": 35, "transaction": 20, "intake": 4, "decide": 6}
# with SMART auth on: a seventh of the reads and searches come from a Care Partner, through the consent gate
AUTH_KINDS = {"read": 30, "search": 30, "partner": 10, "transaction": 20, "intake": 4, "decide": 6}
SEED_PATIENTS = 100
RSS_GROWTH_LIMIT = 0.10  # a worker's RSS may grow less than this after warm-up (issue #18)
WARMUP_SECONDS = 120  # "after warm-up": RSS at minute 2 against RSS at the end (minute 10 of the soak)


def transaction_bundle(marker: str, rng: random.Random) -> dict[str, Any]:
    """One Patient and three Observations about it, every entry carrying the transaction's marker."""
    ident = {"system": TXN, "value": marker}
    temp = f"urn:uuid:{uuid.uuid4()}"
    entries: list[dict[str, Any]] = [{
        "fullUrl": temp, "request": {"method": "POST", "url": "Patient"},
        "resource": {"resourceType": "Patient", "identifier": [ident, {"system": MRN, "value": marker[:12]}],
                     "name": [{"family": f"Loadfamily{rng.randrange(10_000)}", "given": ["Soak"]}],
                     "gender": rng.choice(["female", "male", "other"]), "birthDate": "1970-01-01"}}]
    for code in ("8867-4", "8480-6", "8462-4"):
        entries.append({"request": {"method": "POST", "url": "Observation"}, "resource": {
            "resourceType": "Observation", "status": "final", "identifier": [ident],
            "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
            "subject": {"reference": temp}, "valueQuantity": {"value": rng.randrange(40, 180), "unit": "1"}}})
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


def form(cin: str, rng: random.Random) -> dict[str, Any]:
    shared = rng.sample(CATEGORIES, rng.randint(1, len(CATEGORIES)))
    return {
        "formType": "AB133", "formVersion": "2025.1", "formId": f"LOAD-{cin}", "signedDate": "2026-01-15",
        "individual": {"givenName": "Soak", "familyName": f"Member{cin}", "birthDate": "1980-05-05",
                       "mediCalId": cin},
        "collector": COLLECTOR, "recipients": {"allCarePartners": True}, "purposes": ["TREAT", "COC"],
        "categories": {c: ("share" if c in shared else "do-not-share") for c in CATEGORIES},
        "expiration": {"date": "2030-01-01"},
        "signature": {"signer": "individual", "method": "electronic", "date": "2026-01-15"},
        "acknowledgements": ACKS,
    }


def decide_parameters(cin: str, rng: random.Random) -> dict[str, Any]:
    return {"resourceType": "Parameters", "parameter": [
        {"name": "patient", "valueIdentifier": {"system": CIN, "value": cin}},
        {"name": "recipient", "valueIdentifier": COLLECTOR["identifiers"][0]},  # type: ignore[index]
        {"name": "purpose", "valueCoding": {"system": ACT_REASON, "code": rng.choice(["TREAT", "COC"])}}]}


@dataclass
class Acknowledged:
    """What the server said it wrote (2xx), and what was sent without an answer (may or may not be there)."""

    transactions: list[str] = field(default_factory=list)
    unanswered_transactions: list[str] = field(default_factory=list)
    intakes: list[tuple[str, str]] = field(default_factory=list)  # (cin, Consent reference)
    decides: dict[str, int] = field(default_factory=dict)  # cin → acknowledged decisions
    decide_times: list[float] = field(default_factory=list)  # time.monotonic() of each acknowledged decision


@dataclass
class Result:
    seconds: float
    latencies: dict[str, list[float]] = field(default_factory=dict)  # kind → ms
    errors: list[str] = field(default_factory=list)
    acked: Acknowledged = field(default_factory=Acknowledged)
    rss_kb: dict[int, list[tuple[float, int]]] = field(default_factory=dict)  # pid → (t, kB)

    def count(self) -> int:
        return sum(len(v) for v in self.latencies.values())

    def summary(self) -> dict[str, dict[str, float]]:
        return {k: {"n": len(v), "p50_ms": percentile(v, 50), "p99_ms": percentile(v, 99)}
                for k, v in sorted(self.latencies.items()) if v}

    def rss_at(self, pid: int, t: float) -> int | None:
        """The worker's RSS (kB) in the first sample taken at or after ``t`` seconds into the load."""
        return next((kb for at, kb in self.rss_kb.get(pid, []) if at >= t), None)

    def rss_growth(self, warmup: float) -> dict[int, float]:
        """Per worker: RSS at the end over RSS at the end of warm-up (the first sample at or after ``warmup``
        seconds into the load), minus one (0.05 = +5 %). Warm-up is when per-process state fills: imports
        finish, the validator and consent tables are built, and SQLite's page cache and the bounded caches fill
        (they are sized to be full within the first two minutes of the mixed load; docs/deploy.md, *Sizing*)."""
        out = {}
        for pid, samples in self.rss_kb.items():
            after = [kb for t, kb in samples if t >= warmup]
            if len(after) >= 2:
                out[pid] = after[-1] / after[0] - 1
        return out


def rss_kb(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


class Load:
    """The generator: ``clients`` tasks, each sending its next request when the last one answered."""

    def __init__(self, base: str, clients: int = 64, seed: int = 7, mix: dict[str, int] | None = None) -> None:
        self.base = base
        self.clients = clients
        self.rng = random.Random(seed)
        self.patients: list[str] = []
        self.cins: list[str] = []
        self.result = Result(0.0)
        self.stopping = False
        self._kinds = list(mix or KINDS)
        self._weights = list((mix or KINDS).values())
        self.headers: dict[str, str] = {}  # the administrator's token, when auth is on
        self.partner: Callable[[], str] | None = None  # asks for a Care Partner token (``partner`` requests)
        self.partner_headers: dict[str, str] = {}

    async def seed(self, http: httpx.AsyncClient) -> None:
        """Targets for reads and decisions: patients with observations, and a few filed forms."""
        for _ in range(SEED_PATIENTS // 10):
            for _ in range(10):
                marker = uuid.uuid4().hex
                r = await http.post(f"{self.base}", json=transaction_bundle(marker, self.rng))
                r.raise_for_status()
                self.patients.append(r.json()["entry"][0]["response"]["location"].split("/")[1])
        for _ in range(5):
            cin = self._new_cin()
            r = await http.post(f"{self.base.removesuffix('/fhir')}/ascmi/forms", json=form(cin, self.rng))
            r.raise_for_status()
            self.cins.append(cin)

    async def prepare(self) -> None:
        """Seed now (before ``run(seed=False)``): Care Partner clients need the seeded Organization."""
        async with httpx.AsyncClient(timeout=60, headers=self.headers) as http:
            await self.seed(http)

    def set_mix(self, mix: dict[str, int]) -> None:
        self._kinds, self._weights = list(mix), list(mix.values())

    def _new_cin(self) -> str:
        return f"{self.rng.randrange(10**8):08d}{self.rng.choice('ABCDEFGHJK')}"

    async def _one(self, http: httpx.AsyncClient, kind: str) -> None:
        rng, base, acked = self.rng, self.base, self.result.acked
        marker = cin = ""
        try:
            if kind == "read":
                r = await http.get(f"{base}/Patient/{rng.choice(self.patients)}")
            elif kind == "search":
                pid = rng.choice(self.patients)
                url = rng.choice([f"{base}/Observation?subject=Patient/{pid}",
                                  f"{base}/Patient?family=Loadfamily{rng.randrange(10_000)}",
                                  f"{base}/Consent?patient:identifier={CIN}|{rng.choice(self.cins)}&status=active",
                                  f"{base}/Observation?code=http://loinc.org|8867-4&_count=10"])
                r = await http.get(url)
            elif kind == "transaction":
                marker = uuid.uuid4().hex
                acked.unanswered_transactions.append(marker)
                r = await http.post(base, json=transaction_bundle(marker, rng))
            elif kind == "intake":
                cin = self._new_cin()
                r = await http.post(f"{base.removesuffix('/fhir')}/ascmi/forms", json=form(cin, rng))
            elif kind == "decide":
                cin = rng.choice(self.cins)
                r = await http.post(f"{base}/Consent/$decide", json=decide_parameters(cin, rng))
            else:  # a Care Partner reads through the consent gate: what it may see, never an error
                url = rng.choice([f"{base}/Patient?identifier={CIN}|{rng.choice(self.cins)}",
                                  f"{base}/Consent?patient:identifier={CIN}|{rng.choice(self.cins)}&status=active",
                                  f"{base}/Observation?subject=Patient/{rng.choice(self.patients)}"])
                r = await http.get(url, headers=self.partner_headers)
        except httpx.HTTPError as e:
            self.result.errors.append(f"{kind}: {type(e).__name__}")
            return
        if r.status_code >= 400:
            self.result.errors.append(f"{kind}: HTTP {r.status_code} {r.text[:200]}")
            return
        if kind == "transaction":
            acked.unanswered_transactions.remove(marker)
            acked.transactions.append(marker)
        elif kind == "intake":
            acked.intakes.append((cin, r.headers["location"].split("/_history")[0].split("/fhir/")[-1]))
            self.cins.append(cin)
        elif kind == "decide":
            acked.decides[cin] = acked.decides.get(cin, 0) + 1
            acked.decide_times.append(time.monotonic())

    async def _client(self, http: httpx.AsyncClient, deadline: float) -> None:
        while not self.stopping and time.monotonic() < deadline:
            kind = self.rng.choices(self._kinds, self._weights)[0]
            t0 = time.perf_counter()
            try:
                await self._one(http, kind)
            except Exception as e:  # noqa: BLE001 - an answer the generator did not expect is an error, not a stop
                self.result.errors.append(f"{kind}: unexpected answer ({type(e).__name__}: {e})"[:300])
            self.result.latencies.setdefault(kind, []).append((time.perf_counter() - t0) * 1000)

    async def _sample_rss(self, pids: Callable[[], list[int]], started: float, deadline: float) -> None:
        while not self.stopping and time.monotonic() < deadline:
            for pid in pids():
                kb = rss_kb(pid)
                if kb is not None:
                    self.result.rss_kb.setdefault(pid, []).append((time.monotonic() - started, kb))
            await asyncio.sleep(2)

    async def _renew_partner_token(self) -> None:
        if self.partner is not None:
            self.partner_headers = {"Authorization": f"Bearer {await asyncio.to_thread(self.partner)}"}

    async def _renew_partner(self, deadline: float) -> None:
        """Care Partner tokens live five minutes: ask for a new one every four."""
        while self.partner is not None and not self.stopping and time.monotonic() < deadline:
            await asyncio.sleep(min(240, max(0.0, deadline - time.monotonic())))
            if time.monotonic() < deadline:
                await self._renew_partner_token()

    async def run(self, seconds: float, pids: Callable[[], list[int]] = list, seed: bool = True,
                  timeout: float = 30) -> Result:
        limits = httpx.Limits(max_connections=self.clients, max_keepalive_connections=self.clients)
        async with httpx.AsyncClient(timeout=timeout, limits=limits, headers=self.headers) as http:
            if seed:
                await self.seed(http)
            started = time.monotonic()
            deadline = started + seconds
            await self._renew_partner_token()
            await asyncio.gather(self._sample_rss(pids, started, deadline), self._renew_partner(deadline),
                                 *(self._client(http, deadline) for _ in range(self.clients)))
            self.result.seconds = time.monotonic() - started
        return self.result


def verify(base: str, acked: Acknowledged, headers: dict[str, str] | None = None) -> list[str]:
    """What the store must show after any stop or crash: every acknowledged write whole, no partial
    transaction, every acknowledged intake with its Consent and Provenance. Returns the problems found."""
    problems = []
    with httpx.Client(base_url=base, timeout=60, headers=headers) as http:
        def count(url: str) -> int:
            r = http.get(url + "&_summary=count")
            r.raise_for_status()
            return int(r.json()["total"])

        for marker in acked.transactions:
            found = (count(f"/Patient?identifier={TXN}|{marker}"), count(f"/Observation?identifier={TXN}|{marker}"))
            if found != (1, 3):
                problems.append(f"acknowledged transaction {marker}: found {found} of (1, 3)")
        for marker in acked.unanswered_transactions:
            found = (count(f"/Patient?identifier={TXN}|{marker}"), count(f"/Observation?identifier={TXN}|{marker}"))
            if found not in ((0, 0), (1, 3)):
                problems.append(f"unanswered transaction {marker} is partial: {found}")
        for cin, consent in acked.intakes:
            r = http.get(f"/{consent}")
            if r.status_code != 200:
                problems.append(f"acknowledged intake {cin}: {consent} answers {r.status_code}")
                continue
            if count(f"/Provenance?target={consent}") < 1:
                problems.append(f"acknowledged intake {cin}: no Provenance targets {consent}")
    return problems


def decision_audits(base: str, acked: Acknowledged, headers: dict[str, str] | None = None) -> tuple[int, int]:
    """(acknowledged decisions, decision AuditEvents found) over the patients decided about."""
    found = 0
    with httpx.Client(base_url=base, timeout=60, headers=headers) as http:
        for cin in acked.decides:
            r = http.get(f"/Patient?identifier={CIN}|{cin}")
            r.raise_for_status()
            for entry in r.json().get("entry") or []:
                audits = http.get(f"/AuditEvent?patient=Patient/{entry['resource']['id']}"
                                  f"&subtype={BALP_AUTHZ}|AuthZ-Consent&_summary=count")  # decisions, not reads
                audits.raise_for_status()
                found += int(audits.json()["total"])
    return sum(acked.decides.values()), found


def report(result: Result, warmup: float) -> str:
    lines = [f"{result.count()} requests in {result.seconds:.0f} s ({result.count() / max(result.seconds, 1):.0f}/s),"
             f" {len(result.errors)} errors"]
    for kind, s in result.summary().items():
        lines.append(f"  {kind:<12} n={int(s['n']):>7}  p50={s['p50_ms']:8.1f} ms  p99={s['p99_ms']:8.1f} ms")
    for pid, growth in result.rss_growth(warmup).items():
        samples = [kb for t, kb in result.rss_kb[pid] if t >= warmup]
        lines.append(f"  worker {pid}: RSS {samples[0] / 1024:.0f} → {samples[-1] / 1024:.0f} MB after warm-up"
                     f" ({growth * 100:+.1f} %)")
        marks = range(0, int(result.seconds) + 1, 60 if result.seconds >= 180 else 10)
        timeline = ", ".join(f"{t}s {kb / 1024:.0f}" for t in marks if (kb := result.rss_at(pid, t)) is not None)
        lines.append(f"    RSS (MB) over time: {timeline}")
    lines.append("  " + memory_verdict(result, warmup))
    for error in result.errors[:10]:
        lines.append(f"  error: {error}")
    return "\n".join(lines)


def memory_ok(result: Result, warmup: float, limit: float = RSS_GROWTH_LIMIT) -> bool:
    """The soak's memory promise: every worker's RSS grew less than ``limit`` after warm-up."""
    growth = result.rss_growth(warmup)
    return bool(growth) and max(growth.values()) < limit


def memory_verdict(result: Result, warmup: float, limit: float = RSS_GROWTH_LIMIT) -> str:
    growth = result.rss_growth(warmup)
    worst = max(growth.values(), default=float("nan"))
    verdict = "PASS" if memory_ok(result, warmup, limit) else "FAIL"
    return (f"memory: {verdict} — worst worker {worst * 100:+.1f} % from {warmup:.0f} s to the end"
            f" of the load (limit {limit * 100:+.0f} %, {len(growth)} workers)")


def histogram_quantile(text: str, name: str, q: float, **labels: str) -> float | None:
    """The upper bound of the bucket holding quantile ``q`` of a Prometheus histogram (summed over labels not
    given), as ``histogram_quantile`` would bound it; None when the histogram is empty."""
    buckets: dict[float, float] = {}
    for line in text.splitlines():
        if not line.startswith(name + "_bucket{"):
            continue
        head, value = line.rsplit(" ", 1)
        found = dict(re.findall(r'(\w+)="([^"]*)"', head))
        if all(found.get(k) == v for k, v in labels.items()):
            le = float(found["le"])
            buckets[le] = buckets.get(le, 0.0) + float(value)
    if not buckets or buckets[max(buckets)] == 0:
        return None
    total = buckets[max(buckets)]
    return next(le for le in sorted(buckets) if buckets[le] >= q * total)


def server_side(root: str) -> str:
    """Server-side figures from ``/metrics``: the write-behind lag (what a crash can lose) and store commits."""
    text = httpx.get(f"{root}/metrics", timeout=30).text
    parts = []
    for title, name, labels in (("audit write-behind lag", "fhir_write_behind_lag_seconds", {}),
                                ("store commit", "fhir_store_transaction_duration_seconds", {"outcome": "commit"})):
        bounds = [histogram_quantile(text, name, q, **labels) for q in (0.5, 0.99, 1.0)]
        parts.append(f"  {title}: p50 ≤ {bounds[0]} s, p99 ≤ {bounds[1]} s, max ≤ {bounds[2]} s")
    return "\n".join(parts)


def main(argv: list[str] | None = None) -> int:
    from tests.ops.server import running  # the same server harness as the tests

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=600)
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--warmup", type=float, default=WARMUP_SECONDS,
                        help="seconds of load before the RSS baseline (default: 120, i.e. minute 2 vs the end)")
    parser.add_argument("--mix", default="", help="weights, e.g. read=50,search=50 (default: 70/20/10 as above)")
    parser.add_argument("--auth", action="store_true", help="FHIR_AUTH=smart: an administrator and a Care Partner")
    args = parser.parse_args(argv)
    mix = {k: int(v) for k, v in (part.split("=") for part in args.mix.split(",") if part)} or None
    env = {"FHIR_LOG_LEVEL": "warning", **({"FHIR_AUTH": "smart"} if args.auth else {})}
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        with running(data, Path(tmp) / "server.log", workers=args.workers, env=env) as server:
            load = Load(server.base, args.clients, mix=mix)
            if args.auth:
                from benchmarks.mixed_auth import CarePartner, admin_token

                load.headers = {"Authorization": f"Bearer {admin_token(env, data, int(args.seconds) + 3600)}"}
                asyncio.run(load.prepare())
                load.partner = CarePartner(env, data, server.base, load.headers["Authorization"][7:], Path(tmp)).token
                load.set_mix(mix or AUTH_KINDS)
            result = asyncio.run(load.run(args.seconds, server.worker_pids, seed=not args.auth))
            print(report(result, args.warmup))
            print(server_side(server.root))
            for line in [line for line in server.log().splitlines() if '"level":"error"' in line
                         or '"level":"warning"' in line][:20]:
                print("  server:", line[:300])
            problems = verify(server.base, result.acked, load.headers)
            print(f"verification: {len(problems)} problems", *problems[:10], sep="\n  ")
    return 1 if result.errors or problems or not memory_ok(result, args.warmup) else 0


if __name__ == "__main__":
    sys.exit(main())
