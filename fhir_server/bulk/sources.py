"""What an export reads: batches of stored versions, before the gate.

- System level without filters: the store's index scan (``ExportJobs.scan``), one pass over every type when no
  ``_type`` was given — stored bytes, never parsed.
- ``_typeFilter``: the server's own search (parser + store compiler), paged by cursor; several filters on one
  type are ORed (a resource matching two is exported once).
- Patient and Group level: the R4 Patient CompartmentDefinition, answered from the reference index: for each
  compartment type and each of its parameters, ``param=Patient/a,Patient/b,…`` over batches of patients.

Every source bounds ``lastUpdated`` to ``(_since, transactionTime]``: a resource changed after the kick-off is
left to the next export (the client's next ``_since`` is this ``transactionTime``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import replace

from fhir_server.bulk.request import ExportRequest
from fhir_server.consent.compartment import compartment_params
from fhir_server.fhir.search import definitions
from fhir_server.fhir.search.api import parse_search
from fhir_server.fhir.search.ast import SearchPage, SearchQuery
from fhir_server.store.base import ResourceVersion
from fhir_server.store.export_jobs import ExportJobs

BATCH = 1000
PATIENTS_PER_QUERY = 100

Batches = AsyncIterator[list[ResourceVersion]]
Search = Callable[[SearchQuery], Awaitable[SearchPage]]  # the store's search, or the gated one (runner.py)


def _bounds(since: str | None, until: str) -> list[tuple[str, str]]:
    pairs = [("_lastUpdated", f"le{until}")]
    if since:
        pairs.append(("_lastUpdated", f"gt{since}"))
    return pairs


async def _search(search: Search, rtype: str, pairs: list[tuple[str, str]], until: str) -> Batches:
    query = parse_search(rtype, pairs, strict=True, default_count=BATCH, max_count=BATCH)
    query = replace(query, count=BATCH, total="none", includes=(), revincludes=(), sort=())
    cursor: str | None = None
    while True:
        page = await search(query.with_cursor(cursor))
        yield [v for v in page.matches if v.last_updated <= until]
        cursor = page.next_cursor
        if cursor is None:
            return


async def _filtered(search: Search, rtype: str, filters: list[list[tuple[str, str]]], extra: list[tuple[str, str]],
                    until: str, seen: set[str] | None) -> Batches:
    """Each filter (ORed), ANDed with ``extra``; ``seen`` de-duplicates across filters and parameters."""
    for f in filters or [[]]:
        async for batch in _search(search, rtype, [*f, *extra], until):
            if seen is not None:
                batch = [v for v in batch if v.id not in seen]
                seen.update(v.id for v in batch)
            if batch:
                yield batch


async def system_level(req: ExportRequest, jobs: ExportJobs, search: Search, until: str) -> Batches:
    if req.all_types and not req.type_filters:
        wanted = set(req.types)
        async for batch in jobs.scan(None, req.since, until, BATCH):
            yield [v for v in batch if v.resource_type in wanted]
        return
    for rtype in req.types:
        filters = req.type_filters.get(rtype)
        if filters:
            seen: set[str] | None = set() if len(filters) > 1 else None
            async for batch in _filtered(search, rtype, filters, _bounds(req.since, until), until, seen):
                yield batch
        else:
            async for batch in jobs.scan(rtype, req.since, until, BATCH):
                yield batch


def _chunks(ids: list[str]) -> Iterator[list[str]]:
    for start in range(0, len(ids), PATIENTS_PER_QUERY):
        yield ids[start:start + PATIENTS_PER_QUERY]


async def _any(jobs: ExportJobs, rtype: str, since: str | None, until: str) -> bool:
    """Does the store hold any resource of ``rtype`` in the window? (Skips dozens of empty compartment types.)"""
    async for batch in jobs.scan(rtype, since, until, 1):
        if batch:
            return True
    return False


async def compartment_level(req: ExportRequest, patients: list[str], jobs: ExportJobs, search: Search,
                            until: str) -> Batches:
    """Resources in the compartments of ``patients`` (ids), type by type.

    A resource in several compartments (an Observation whose subject and performer are two patients of the
    export) is exported once: a set of the ids already written, per type, costs memory proportional to that
    type's share of the export — the one place an export's memory grows with its size.
    """
    bounds = _bounds(req.since, until)
    for rtype in req.types:
        if not patients or not await _any(jobs, rtype, req.since, until):
            continue
        filters = req.type_filters.get(rtype) or [[]]
        if rtype == "Patient":
            for ids in _chunks(patients):
                async for batch in _filtered(search, rtype, filters, [("_id", ",".join(ids)), *bounds], until,
                                             None):
                    yield batch
            continue
        params = [p for p in compartment_params(rtype) if definitions.param(rtype, p) is not None]
        seen: set[str] | None = set() if (len(params) > 1 or len(filters) > 1 or len(patients) > 1) else None
        for param in params:
            for ids in _chunks(patients):
                refs = ",".join(f"Patient/{i}" for i in ids)
                async for batch in _filtered(search, rtype, filters, [(param, refs), *bounds], until, seen):
                    yield batch
