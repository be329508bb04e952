"""Server CPU per Consent, MongoDB store vs SQLite store, side by side in one command (issue #16).

The workload is ``benchmarks.stored_refs``' (and ``../shared/bench/compare.sh``'s): 100-entry transaction
Bundles of Consents referring to stored Patients and Organizations. Two server processes run at once — one on a
SQLite file, one on MongoDB (a SecantusDB started on a free port, as the tests do) — each loaded with the same
Patients and Organizations and warmed up alike. Then rounds alternate between them (each store first in turn);
a round posts ``BUNDLES`` Bundles to one server and reads that process's CPU (utime + stime from
``/proc/PID/stat``) before and after. Only the *server* process is counted: the database's own CPU (SecantusDB,
which stands in for ``mongod``; SQLite runs inside the server and is counted) and the client's are not.

The printed ratio is the median over rounds of MongoDB / SQLite CPU per Consent, pairing each MongoDB round
with the SQLite round next to it (the 2-core machine is shared, so only ratios inside one run mean anything).
Target: ≤ 1.10.

    python -m benchmarks.store_cpu [ROUNDS=7] [BUNDLES=20]
"""

from __future__ import annotations

import os
import random
import statistics
import sys
import uuid
from pathlib import Path

import httpx

from benchmarks.load import consent as consent_body
from benchmarks.server import server_process
from benchmarks.stats import Row
from benchmarks.stored_refs import BUNDLE, _people, _transaction

TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all its threads), in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # fields 14 and 15 of proc(5), after pid and comm


def _round(client: httpx.Client, base: str, pid: int, bundles: int, patients: list[str], orgs: list[str],
           rng: random.Random) -> float:
    """Post ``bundles`` Bundles of Consents; the server's CPU µs per Consent."""
    payloads = [[consent_body(f"Patient/{rng.choice(patients)}", rng.choice(orgs), rng.choice(orgs), rng)
                 for _ in range(BUNDLE)] for _ in range(bundles)]
    before = cpu_seconds(pid)
    for batch in payloads:
        _transaction(client, base, batch)
    return (cpu_seconds(pid) - before) / (bundles * BUNDLE) * 1e6


def measure(rounds: int = 7, bundles: int = 20, people: int = 2_000) -> tuple[list[float], list[float]]:
    """(SQLite, MongoDB) µs per Consent, one value per round."""
    from tests.mongo_server import secantus_server

    with secantus_server() as uri, \
            server_process() as (sqlite_base, sqlite_proc), \
            server_process(env={"MONGODB_URI": uri, "MONGODB_DATABASE": f"bench_{uuid.uuid4().hex[:8]}"}) as (
                mongo_base, mongo_proc), \
            httpx.Client(timeout=600) as client:
        servers = {"sqlite": (sqlite_base, sqlite_proc.pid), "mongo": (mongo_base, mongo_proc.pid)}
        refs = {name: _people(base, people, people // 10, random.Random(16)) for name, (base, _) in servers.items()}
        results: dict[str, list[float]] = {"sqlite": [], "mongo": []}
        for r in range(-1, rounds):  # round -1 warms both up alike (caches, the schema validator, pages)
            order = ["sqlite", "mongo"] if r % 2 == 0 else ["mongo", "sqlite"]
            for name in order:
                base, pid = servers[name]
                orgs, patients = refs[name]
                us = _round(client, base, pid, bundles if r >= 0 else 5, patients, orgs, random.Random(r * 7 + 1))
                if r >= 0:
                    results[name].append(us)
                    print(f"  round {r + 1}/{rounds} {name:6s} {us:6.0f} µs/Consent", file=sys.stderr, flush=True)
    return results["sqlite"], results["mongo"]


def run(base: str = "", rounds: int = 7, bundles: int = 20) -> list[Row]:
    """``base`` (the runner's server) is not used: this needs its own pair of servers."""
    sqlite, mongo = measure(rounds, bundles)
    ratios = [m / s for m, s in zip(mongo, sqlite, strict=True)]
    ratio = statistics.median(ratios)
    consents = rounds * bundles * BUNDLE
    return [
        Row("server CPU per Consent, SQLite", f"{statistics.median(sqlite):.0f} µs", "",
            f"median of {rounds} rounds ({consents:,} Consents per store): " + " ".join(f"{x:.0f}" for x in sqlite)),
        Row("server CPU per Consent, MongoDB", f"{statistics.median(mongo):.0f} µs", f"{ratio:.2f}×",
            "median of per-round ratios (" + " ".join(f"{x:.2f}" for x in ratios) + "); target ≤ 1.10×, "
            "database process excluded"),
    ]


if __name__ == "__main__":
    from benchmarks.stats import print_table

    args = [int(a) for a in sys.argv[1:]]
    print_table(run("", *args))
