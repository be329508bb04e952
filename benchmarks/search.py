"""Search at scale: 100k Consents (+20k Patients, 2k Organizations) loaded over HTTP, then p50/p95 per query.

Every query is sent sequentially over HTTP (httpx, keep-alive) with a random value per request, and reported
with its ratio to the ``GET /health`` round trip measured in the same run (the machine is shared: ratios are
what compare between runs). Target: every p50 ≤ 10 ms end to end.

``python -m benchmarks.search DATA_DIR`` measures against a directory filled by ``python -m benchmarks.load``.
"""

from __future__ import annotations

import random
import statistics
import sys
from collections.abc import Callable
from typing import Any

import httpx

from benchmarks.load import ACT_REASON, MRN, PURPOSES, DataSet, load
from benchmarks.stats import Row, latencies, p50_p95

N = 300  # requests per query


def _queries(data: DataSet, rng: random.Random) -> list[tuple[str, Callable[[], str]]]:
    def pid() -> str:
        return rng.choice(data.patients)

    def org_fragment() -> str:
        word = rng.choice(data.org_words)
        start = rng.randint(0, len(word) - 4)
        return word[start : start + 4]

    def date() -> str:
        return f"{rng.randint(2013, 2031)}-{rng.randint(1, 12):02d}-01"

    return [
        ("Consent?patient=X", lambda: f"Consent?patient=Patient/{pid()}"),
        ("Consent?patient=X&status=active", lambda: f"Consent?patient=Patient/{pid()}&status=active"),
        ("Consent?actor=Organization/Y&purpose=P",
         lambda: f"Consent?actor=Organization/{rng.choice(data.orgs)}&purpose={ACT_REASON}|{rng.choice(PURPOSES)}"),
        ("Consent?period=geD", lambda: f"Consent?period=ge{date()}"),
        ("Patient?name=N", lambda: f"Patient?name={rng.choice(data.families)}"),
        ("Patient?identifier=sys|val", lambda: f"Patient?identifier={MRN}|{rng.choice(data.mrns)}"),
        ("Organization?name:contains=S", lambda: f"Organization?name:contains={org_fragment()}"),
        ("Consent?patient=X&_include=Consent:actor",
         lambda: f"Consent?patient=Patient/{pid()}&_include=Consent:actor"),
    ]


def _extra(data: DataSet, rng: random.Random) -> list[tuple[str, Callable[[], str]]]:
    """Broad searches (one cheap filter matching most of the type) and explicit accurate totals."""
    return [
        ("Consent?status=active", lambda: "Consent?status=active"),
        ("Consent?status=inactive", lambda: "Consent?status=inactive"),
        ("Consent (no filter)", lambda: "Consent"),
        ("Consent?period=geD&_total=accurate",
         lambda: f"Consent?period=ge{rng.randint(2013, 2031)}-01-01&_total=accurate"),
        ("Consent?status=active&_total=accurate", lambda: "Consent?status=active&_total=accurate"),
    ]


def _deep_page(client: httpx.Client, base: str, path: str, pages: int) -> str:
    """The URL of page ``pages`` of a search, found by following next links."""
    url = f"{base}/{path}"
    for _ in range(pages - 1):
        bundle = client.get(url).json()
        url = next(link["url"] for link in bundle["link"] if link["relation"] == "next")
    return url


def _measure(client: httpx.Client, base: str, make: Callable[[], str], n: int) -> tuple[list[float], float]:
    matches: list[int] = []

    def call() -> None:
        path = make()
        r = client.get(path if path.startswith("http") else f"{base}/{path}")
        if r.status_code != 200:
            raise RuntimeError(f"{r.request.url}: {r.status_code} {r.text[:300]}")
        matches.append(sum(1 for e in r.json().get("entry", ()) if e.get("search", {}).get("mode") == "match"))

    samples = latencies(call, n, warmup=10)
    return samples, statistics.mean(matches) if matches else 0.0


def measure(base: str, data: DataSet, n: int = N, seed: int = 7) -> list[Row]:
    rng = random.Random(seed)
    root = base.removesuffix("/fhir")
    rows: list[Row] = []
    with httpx.Client(timeout=60) as client:
        h50, h95 = p50_p95(latencies(lambda: client.get(f"{root}/health"), n * 2))
        rows.append(Row("search: baseline GET /health p50 / p95", f"{h50:.2f} / {h95:.2f} ms"))

        def add(name: str, samples: list[float], note: str) -> None:
            p50, p95 = p50_p95(samples)
            rows.append(Row(f"search: {name} p50", f"{p50:.2f} ms", f"{p50 / h50:.1f}x", note))
            rows.append(Row(f"search: {name} p95", f"{p95:.2f} ms", f"{p95 / h50:.1f}x"))

        for name, make in _queries(data, rng):
            samples, avg = _measure(client, base, make, n)
            add(name, samples, f"target p50 ≤ 10 ms; {avg:.1f} matches/page")
        for name, make in _extra(data, rng):
            samples, avg = _measure(client, base, make, max(30, n // 10))
            add(name, samples, f"{avg:.1f} matches/page")
        deep = max(2, min(200, len(data.patients) // 20))
        for path, pages in (("Consent?status=active", deep), ("Consent?period=ge2020-01-01", deep)):
            url = _deep_page(client, base, path, pages)
            samples, _ = _measure(client, base, lambda u=url: u, max(30, n // 10))  # type: ignore[misc]
            add(f"{path} page {pages}", samples, "keyset: same cost as page 1")
    return rows


def run(base: str) -> list[Row]:
    print("  loading 122k resources …", file=sys.stderr, flush=True)
    data = load(base)
    rows = [Row("search: load (transaction Bundles of ~500 entries)", f"{data.rate:.0f} res/s", "",
                f"{data.resources} resources in {data.seconds:.0f} s")]
    return rows + measure(base, data)


if __name__ == "__main__":  # pragma: no cover - a manual tool
    import json
    from pathlib import Path

    from benchmarks.server import running_server
    from benchmarks.stats import print_table

    data_dir = Path(sys.argv[1])
    raw: dict[str, Any] = json.loads((data_dir / "dataset.json").read_text())
    dataset = DataSet(**raw)
    with running_server(data_dir) as server_base:
        print_table(measure(server_base, dataset, n=int(sys.argv[2]) if len(sys.argv) > 2 else N))
