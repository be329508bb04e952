"""Bulk export and import of NDJSON (one resource per line), to move data between stores.

Import keeps ids (each line is an update-as-create), writes in transactions of ``batch`` resources and skips
local reference checks, since a file's order need not follow its references.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass

from fhir_server.fhir import jsonio
from fhir_server.fhir.outcome import BadRequest, FHIRError
from fhir_server.repository import resources as repo
from fhir_server.store.base import Store


@dataclass
class ImportReport:
    imported: int = 0
    failed: int = 0
    errors: list[str] | None = None


async def export(store: Store, resource_type: str | None = None) -> AsyncIterator[bytes]:
    async for version in store.export(resource_type):
        assert version.body is not None
        yield version.body + b"\n"


async def import_lines(store: Store, lines: Iterable[bytes], batch: int = 500) -> ImportReport:
    report = ImportReport(errors=[])
    pending: list[tuple[int, dict]] = []  # type: ignore[type-arg]

    async def flush() -> None:
        async with store.transaction() as tx:
            for _, resource in pending:
                await repo.update(tx, resource["resourceType"], resource["id"], resource, check_refs=False)
        report.imported += len(pending)
        pending.clear()

    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            resource = jsonio.loads(line)
            if not isinstance(resource, dict) or "id" not in resource:
                raise BadRequest("each line must be a resource with an id")
            repo.check_body(resource, str(resource.get("resourceType")), resource["id"])
            pending.append((number, resource))
        except (FHIRError, jsonio.InvalidJSON) as exc:
            report.failed += 1
            assert report.errors is not None
            report.errors.append(f"line {number}: {exc}")
        if len(pending) >= batch:
            await flush()
    if pending:
        await flush()
    return report
