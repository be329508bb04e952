"""Bulk export: resources per second of a system-level ``$export`` run by an administrator, and memory.

In-process on a real SQLite file: the data (Patients and Observations, ~600 bytes each) is loaded with the NDJSON
importer, then the export runner runs one job exactly as the background worker does (scan, gate, NDJSON chunks
written to the store) and every output file is streamed back as a download would. Target: ≥ 20,000 resources/s
at 100k resources, memory flat — the tracemalloc peak of the export does not grow with the export's size
(measured at 10k and at 100k). The rows also report the process RSS growth during the run.

``python -m benchmarks export`` (part of ``make bench``) or ``python -m benchmarks.export [N]``.
"""

from __future__ import annotations

import asyncio
import json
import resource
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

from benchmarks.stats import Row
from fhir_server.bulk.request import ExportRequest
from fhir_server.bulk.runner import ExportRunner
from fhir_server.consent.gate import Gate
from fhir_server.fhir import instant
from fhir_server.repository.ndjson import import_lines
from fhir_server.security.caller import ADMINISTRATOR
from fhir_server.settings import Settings
from fhir_server.store.export_jobs import ExportJob
from fhir_server.store.sqlite import SQLiteStore


def _lines(n: int) -> list[bytes]:
    out = []
    for i in range(n):
        if i % 5 == 0:
            r = {"resourceType": "Patient", "id": f"p{i}", "gender": "female", "birthDate": "1980-01-01",
                 "name": [{"family": f"Family{i}", "given": ["Given"]}],
                 "identifier": [{"system": "urn:example:mrn", "value": f"MRN{i:08d}"}]}
        else:
            r = {"resourceType": "Observation", "id": f"o{i}", "status": "final",
                 "subject": {"reference": f"Patient/p{i - i % 5}"}, "effectiveDateTime": "2025-01-01T10:00:00Z",
                 "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4", "display": "Heart rate"}]},
                 "valueQuantity": {"value": 60 + i % 40, "unit": "/min", "system": "http://unitsofmeasure.org",
                                   "code": "/min"}}
        out.append(json.dumps(r).encode())
    return out


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def _measure(n: int, data_dir: Path) -> tuple[float, float, float, int]:
    """(export seconds, download seconds, tracemalloc peak MiB during the export, exported count)."""
    settings = Settings(data_dir=data_dir, load_conformance=False, auth="off")
    store = SQLiteStore(settings.sqlite_path)
    await store.open()
    try:
        await import_lines(store, _lines(n), batch=2000)
        runner = ExportRunner(store, Gate(store, settings), settings, None)
        req = ExportRequest("system", ["Observation", "Patient"], all_types=True)

        async def one(job_id: str) -> float:
            job = ExportJob(job_id, ADMINISTRATOR, "bench", req.to_json(), instant.now())
            assert await runner.jobs.create(job, 10)
            claimed = await runner.jobs.claim("bench", time.time(), 600)
            assert claimed is not None and claimed.id == job_id
            t0 = time.perf_counter()
            await runner.run_job(claimed, "bench")
            return time.perf_counter() - t0

        await one("warm-up")  # first-use costs (imports, caches, the SQLite page cache) are not the export's
        await runner.jobs.delete("warm-up")
        export_s = await one("bench")  # timed without tracing (tracemalloc slows every allocation)
        tracemalloc.start()
        await one("traced")
        peak = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
        done = await runner.jobs.get("bench")
        assert done is not None and done.status == "completed"
        t0 = time.perf_counter()
        lines = 0
        for entry in done.output:
            async for chunk in runner.jobs.chunks("bench", entry["file"]):
                lines += chunk.count(b"\n")
        download_s = time.perf_counter() - t0
        return export_s, download_s, peak, lines
    finally:
        await store.close()


def run(_: str | None = None, sizes: tuple[int, ...] = (10_000, 100_000)) -> list[Row]:
    rows: list[Row] = []
    peaks: list[float] = []
    for n in sizes:
        with tempfile.TemporaryDirectory() as tmp:
            rss0 = _rss_mb()
            export_s, download_s, peak, lines = asyncio.run(_measure(n, Path(tmp)))
            assert lines == n, (lines, n)
            peaks.append(peak)
            rows.append(Row(f"$export {n:,} resources (admin, SQLite)", f"{n / export_s:,.0f}/s",
                            f"{n / export_s / 20_000:.2f}x", f"target ≥ 20,000/s; {export_s:.2f} s"))
            rows.append(Row("  download of its files", f"{n / download_s:,.0f}/s", "",
                            f"{download_s:.2f} s"))
            rows.append(Row("  tracemalloc peak during export", f"{peak:.1f} MiB", "",
                            f"max RSS grew {_rss_mb() - rss0:.0f} MiB (incl. loading the data)"))
    if len(peaks) > 1:
        rows.append(Row("memory peak ratio largest/smallest export", f"{peaks[-1] / peaks[0]:.2f}",
                        "", f"sizes ratio {sizes[-1] / sizes[0]:.0f}x: flat ≈ 1"))
    return rows


if __name__ == "__main__":
    from benchmarks.stats import print_table

    sizes = tuple(int(a) for a in sys.argv[1:]) or (10_000, 100_000)
    print_table(run(None, sizes))
