"""The Store contract: what every persistence backend (SQLite, MongoDB) provides.

Stores keep three things per resource (DESIGN.md): the current version, every past version (deletes are
versions too) and the search index values extracted at write time. They know nothing of HTTP and never
parse resources: bodies are canonical JSON bytes produced by the FHIR layer and served back unchanged.

A write happens inside a :class:`Transaction` so that a single interaction and a whole transaction Bundle are
the same kind of atomic unit: everything in the ``async with`` block is committed together or not at all.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from fhir_server.fhir.outcome import PreconditionFailed

if TYPE_CHECKING:
    from fhir_server.fhir.search.ast import SearchPage, SearchQuery
    from fhir_server.fhir.search.index import IndexRows
    from fhir_server.store.export_jobs import ExportJobs


T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class ResourceVersion:
    """One version of one resource, as stored.

    ``last_updated`` is a FHIR instant in UTC with millisecond precision (``2026-11-23T14:41:28.123Z``); the
    fixed format makes string order equal time order in both stores. ``body`` is ``None`` for a delete.
    ``method`` is the HTTP verb that produced the version (history bundles report it).
    """

    resource_type: str
    id: str
    version_id: int
    last_updated: str
    deleted: bool
    body: bytes | None
    method: str = "PUT"

    @property
    def reference(self) -> str:
        return f"{self.resource_type}/{self.id}"


@dataclass(frozen=True, slots=True)
class HistoryQuery:
    """History of one instance (type and id), one type (type) or the whole system (neither)."""

    resource_type: str | None = None
    id: str | None = None
    since: str | None = None  # UTC instant, inclusive
    at: str | None = None  # UTC instant: versions current at that moment
    count: int = 50
    cursor: str | None = None  # opaque, from a previous page's next_cursor
    want_total: bool = True


@dataclass(frozen=True, slots=True)
class HistoryPage:
    versions: list[ResourceVersion]
    next_cursor: str | None
    total: int | None


@dataclass(slots=True)
class WriteStats:
    """What a transaction wrote (for logs and benchmarks)."""

    versions: int = 0
    index_rows: int = 0
    extra: dict[str, int] = field(default_factory=dict)


class Transaction(Protocol):
    """Reads and writes inside one atomic unit; reads see the unit's own earlier writes."""

    notes: dict[str, Any]  # per-transaction state of the code writing in it (the subscription outbox's batch)

    def before_commit(self, hook: Callable[[], Awaitable[None]]) -> None:
        """Run ``hook`` inside the transaction just before it commits (each once, in the order added; an
        exception rolls everything back). Lets many writes of one transaction share one batched store write."""

    async def current(self, resource_type: str, id: str) -> ResourceVersion | None:
        """The current version (possibly a delete marker) or ``None`` if the resource never existed."""

    async def current_many(self, targets: list[tuple[str, str]]) -> dict[tuple[str, str], ResourceVersion]:
        """:meth:`current` of several resources at once (those that never existed are absent): a Bundle's
        reference checks in one query."""

    async def put(self, version: ResourceVersion, index: IndexRows | None) -> None:
        """Store a new version: it becomes current, joins the history, and replaces the index values.

        The caller has already checked ``version_id`` is the current one + 1 inside this transaction.
        ``index`` is ``None`` for deletes (index values are removed).
        """

    async def search(self, query: SearchQuery) -> SearchPage:
        """Search as the transaction sees the data (used by conditional interactions in bundles)."""

    async def claim(self, key: str) -> None:
        """Make a create under a condition atomic: called after the condition (``key``: its type and normalised
        criteria) found nothing, before creating. Of two transactions claiming one key concurrently, one fails
        with a 412 ``conflict`` (:class:`~fhir_server.store.mongo.errors.TransactionConflict`) and must be run
        again, so it sees the other's resource. A store whose writers are serialised does nothing."""

    async def reindex(self, version: ResourceVersion, index: IndexRows) -> None:
        """Replace the index values of the current version ``version`` (no new version): after the search
        parameter definitions change, so that existing resources become findable by the new ones."""


class RaceLost(PreconditionFailed):
    """A concurrent transaction won a race this one took part in (a version, a conditional-create claim); this
    one was rolled back, nothing of it was written, so running the whole unit again is safe (412 ``conflict``
    when it reaches a client)."""


async def pause_after_race(attempt: int) -> None:
    """Wait before running a unit again after its ``attempt``-th (0-based) lost race: a random share of
    10 ms × 2^attempt, at most 0.5 s. The jitter keeps the losers of one round from meeting again; each round
    has a winner, so N racers need up to N rounds."""
    await asyncio.sleep(random.uniform(0, min(0.5, 0.01 * 2**attempt)))


async def rerun_on_race(unit: Callable[[], Awaitable[T]], attempts: int) -> T:
    """Run ``unit`` (a whole transaction, planned from scratch each time); when it lost a race
    (:class:`RaceLost`: rolled back, nothing written) run it again, ``attempts`` times in all, then let the last
    :class:`RaceLost` through. The one retry loop of MongoDB's ``run_transaction`` and the Bundle processor."""
    for attempt in range(attempts - 1):
        try:
            return await unit()
        except RaceLost:
            await pause_after_race(attempt)
    return await unit()


class PreCommit:
    """What both stores' transactions share for :meth:`Transaction.before_commit` and ``notes``."""

    def __init__(self) -> None:
        self.notes: dict[str, Any] = {}
        self._hooks: list[Callable[[], Awaitable[None]]] = []

    def before_commit(self, hook: Callable[[], Awaitable[None]]) -> None:
        self._hooks.append(hook)

    async def run_before_commit(self) -> None:
        """Called by the store right before its commit."""
        while self._hooks:
            await self._hooks.pop(0)()


class Store(Protocol):
    """The async persistence interface used by the repository layer."""

    name: str

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    def transaction(self) -> AbstractAsyncContextManager[Transaction]:
        """An atomic unit; commits on normal exit, rolls back on exception."""

    async def run_transaction(self, fn: Callable[[Transaction], Awaitable[T]]) -> T:
        """Run ``fn(tx)`` atomically, re-running all of it if a concurrent writer won a race (MongoDB write
        conflicts). ``fn`` must be safe to repeat: it reads what it needs through ``tx``."""

    async def read(self, resource_type: str, id: str) -> ResourceVersion | None: ...

    async def vread(self, resource_type: str, id: str, version_id: int) -> ResourceVersion | None: ...

    async def history(self, query: HistoryQuery) -> HistoryPage: ...

    async def search(self, query: SearchQuery) -> SearchPage: ...

    async def read_many(self, references: list[tuple[str, str]]) -> list[ResourceVersion]:
        """Current, non-deleted versions of the given (type, id) pairs, in no particular order (_include)."""

    def export(self, resource_type: str | None = None) -> AsyncIterator[ResourceVersion]:
        """Every current, non-deleted resource (NDJSON export between stores)."""

    def export_jobs(self) -> ExportJobs:
        """Bulk Data export jobs and their files (``store/export_jobs.py``)."""
