"""Cost of enforcing the base resources' error-level invariants on write (issue #17 budget: ≤ 10% of ingest).

In-process, on one app: transaction bundles of the ingest workload are posted with the check on and off in
turn (on, off, off, on…; the check swapped for a no-op between bundles), so both halves see the same machine
load, store size and warm caches. The ratio is ingest throughput with invariants / without; on a busy machine
it is noisy, so the check's own time per resource is also measured and expressed as a share of the time ingest
spends per resource.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
import timeit
from pathlib import Path
from typing import Any

import httpx

from benchmarks.ingest import bundle, group
from benchmarks.stats import Row
from fhir_server.app import create_app
from fhir_server.fhir import registry
from fhir_server.fhir.validation import resource_rules
from fhir_server.settings import Settings


async def _interleaved(pairs: int) -> tuple[float, float]:
    enforced = resource_rules.check
    seconds = {True: 0.0, False: 0.0}
    with tempfile.TemporaryDirectory() as tmp:
        app = create_app(Settings(data_dir=Path(tmp), auth="off", load_conformance=False))
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://bench", timeout=120) as client:
                headers = {"Prefer": "return=minimal"}
                assert (await client.post("/fhir", json=bundle(10**6), headers=headers)).status_code == 200
                try:
                    for i in range(pairs * 2):
                        on = i % 4 in (0, 3)  # on, off, off, on: no order bias
                        resource_rules.check = enforced if on else (lambda resource: [])  # type: ignore[assignment]
                        payload = bundle(i * 25)
                        t0 = time.perf_counter()
                        r = await client.post("/fhir", json=payload, headers=headers)
                        seconds[on] += time.perf_counter() - t0
                        assert r.status_code == 200, r.text[:300]
                finally:
                    resource_rules.check = enforced  # type: ignore[assignment]
    return pairs * 100 / seconds[True], pairs * 100 / seconds[False]


def _per_resource() -> tuple[float, float]:
    resources: list[dict[str, Any]] = [e["resource"] for e in group(1)]
    for r in resources:
        resource_rules.check(r)
    check = min(timeit.repeat(lambda: [resource_rules.check(r) for r in resources], number=500, repeat=5))
    schema = min(timeit.repeat(lambda: [registry.validate(r) for r in resources], number=500, repeat=5))
    return check / 500 / len(resources) * 1e6, schema / 500 / len(resources) * 1e6


def run(base: str, pairs: int = 20) -> list[Row]:
    on, off = asyncio.run(_interleaved(pairs))
    check_us, schema_us = _per_resource()
    return [
        Row("ingest with base invariants (interleaved)", f"{on:.0f} res/s", f"{on / off:.2f}× without",
            f"without: {off:.0f} res/s; budget ≥ 0.90×"),
        Row("base invariants per resource", f"{check_us:.1f} µs", f"{check_us / schema_us:.2f}× schema pass",
            f"R4 JSON schema pass: {schema_us:.1f} µs"),
        # robust to machine load, unlike the interleaved ratio: the check's time over the time a resource takes
        Row("base invariants: share of ingest time", f"{check_us * on / 1e4:.1f}%", "",
            "per-resource check time × ingest rate; budget ≤ 10%"),
    ]
