"""The embedded store: one SQLite file in WAL mode with ``synchronous=FULL``.

Concurrency model: one *writer* connection guarded by an ``asyncio.Lock`` (SQLite has one writer anyway) and
one *reader* connection for everything outside a transaction. WAL lets the reader see the last committed state
while a write is in progress. Queries run on the event loop thread — they are index-backed and take
microseconds — while the commit (the fsync) runs in a worker thread so reads go on during it.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from fhir_server import metrics
from fhir_server.fhir.outcome import BadRequest
from fhir_server.fhir.search.ast import SearchPage, SearchQuery
from fhir_server.fhir.search.index import IndexRows
from fhir_server.store.base import HistoryPage, HistoryQuery, PreCommit, ResourceVersion
from fhir_server.store.sqlite import index, search
from fhir_server.store.sqlite.locking import WriterFileLock, begin_immediate
from fhir_server.store.sqlite.rows import version_from_row
from fhir_server.store.sqlite.schema import RESOURCE_DDL
from fhir_server.store.sqlite.subscriptions import DDL as SUBSCRIPTION_DDL
from fhir_server.store.sqlite.subscriptions import migrate as migrate_subscriptions

if TYPE_CHECKING:
    from fhir_server.store.sqlite.export_jobs import SQLiteExportJobs

_VERSION_COLUMNS = "rtype, id, vid, last_updated, deleted, body"
T = TypeVar("T")
# SQLite's page cache per connection (``FHIR_SQLITE_CACHE_MIB``); a worker has two connections. It fills with
# the pages a worker touches and never shrinks, so it is what a worker's memory grows into as the store grows
# (docs/deploy.md, *Sizing*). Pages it does not hold are read from the operating system's file cache, which
# all workers share, at a few microseconds each.
DEFAULT_CACHE_MIB = 8
# Prepared statements kept per connection (Python's default is 128). Searches and index writes produce a few
# hundred distinct SQL texts (filters, IN lists of every length), and a prepared statement keeps tens of KiB:
# at 128 per connection the rare ones piled up to ~30 MB in a worker over the mixed soak, still growing at
# minute 5; at 64 the soak's memory stayed flat. The ~50 hot statements (reads, index inserts, the common
# searches) cover 99.5 % of executions, so they stay prepared; a rare one is prepared again (~0.1 ms).
STATEMENT_CACHE = 64


def _connect(path: str, cache_mib: int = DEFAULT_CACHE_MIB) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30,
                           cached_statements=STATEMENT_CACHE)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA foreign_keys=OFF")
    conn.execute("PRAGMA temp_store=MEMORY")
    conn.execute(f"PRAGMA cache_size=-{int(cache_mib) * 1024}")  # negative: KiB, not pages
    return conn


class SQLiteTransaction(PreCommit):
    """Reads and writes on the writer connection inside ``BEGIN IMMEDIATE … COMMIT``."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        super().__init__()
        self._conn = conn

    @property
    def connection(self) -> sqlite3.Connection:
        return self._conn

    async def current(self, resource_type: str, id: str) -> ResourceVersion | None:
        return _current(self._conn, resource_type, id)

    async def current_many(self, targets: list[tuple[str, str]]) -> dict[tuple[str, str], ResourceVersion]:
        found = (_current(self._conn, rtype, id) for rtype, id in targets)
        return {(v.resource_type, v.id): v for v in found if v is not None}

    async def put(self, version: ResourceVersion, rows: IndexRows | None) -> None:
        conn = self._conn
        args = (version.version_id, version.last_updated, int(version.deleted), version.body)
        # A first version has no row yet (the caller read the current version in this transaction): insert at
        # once, without the look-up; the UNIQUE (rtype, id) constraint still refuses a duplicate.
        found = None if version.version_id == 1 else conn.execute(
            "SELECT rid FROM resource WHERE rtype = ? AND id = ?", (version.resource_type, version.id)
        ).fetchone()
        if found is None:
            rid = conn.execute(
                "INSERT INTO resource (rtype, id, vid, last_updated, deleted, body) VALUES (?, ?, ?, ?, ?, ?)",
                (version.resource_type, version.id, *args),
            ).lastrowid
            assert rid is not None
        else:
            rid = found[0]
            conn.execute("UPDATE resource SET vid = ?, last_updated = ?, deleted = ?, body = ? WHERE rid = ?",
                         (*args, rid))
            index.delete_index(conn, rid)
        conn.execute(
            "INSERT INTO history (rtype, id, vid, last_updated, deleted, method, body)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (version.resource_type, version.id, version.version_id, version.last_updated,
             int(version.deleted), version.method, version.body),
        )
        if rows is not None and not version.deleted:
            index.insert_index(conn, rid, version.resource_type, rows)

    async def claim(self, key: str) -> None:
        """Nothing to do: ``BEGIN IMMEDIATE`` already makes this the only writer of the file (across processes
        too), and the condition's search ran on this connection inside the transaction, so no other request
        can create a match between that search and this commit."""

    async def search(self, query: SearchQuery) -> SearchPage:
        return search.run_search(self._conn, query)

    async def reindex(self, version: ResourceVersion, rows: IndexRows) -> None:
        found = self._conn.execute(
            "SELECT rid FROM resource WHERE rtype = ? AND id = ? AND vid = ? AND deleted = 0",
            (version.resource_type, version.id, version.version_id),
        ).fetchone()
        if found is not None:  # a newer version meanwhile was indexed when it was written
            index.delete_index(self._conn, found[0])
            index.insert_index(self._conn, found[0], version.resource_type, rows)


def _current(conn: sqlite3.Connection, resource_type: str, id: str) -> ResourceVersion | None:
    row = conn.execute(
        f"SELECT {_VERSION_COLUMNS} FROM resource WHERE rtype = ? AND id = ?", (resource_type, id)
    ).fetchone()
    return None if row is None else version_from_row(row, "PUT")


def _history_cursor(token: str) -> int:
    """History page tokens are ``history.seq`` values; anything else did not come from a next link."""
    if not (token.isascii() and token.isdigit() and len(token) <= 18):
        raise BadRequest("_cursor is not a valid page token; follow the Bundle's next link", ["_cursor"])
    return int(token)


class SQLiteStore:
    """Embedded store; ``path`` is a file (``:memory:`` is not supported: two connections must share it)."""

    name = "sqlite"

    def __init__(self, path: str | Path, cache_mib: int = DEFAULT_CACHE_MIB) -> None:
        self.path = str(path)
        self.cache_mib = cache_mib
        self._writer: sqlite3.Connection | None = None
        self._reader: sqlite3.Connection | None = None
        self._lock = asyncio.Lock()
        self._file_lock: WriterFileLock | None = None

    async def open(self) -> None:
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._writer = _connect(self.path, self.cache_mib)
        self._writer.executescript(RESOURCE_DDL + index.INDEX_DDL + SUBSCRIPTION_DDL)
        migrate_subscriptions(self._writer)
        self._writer.execute("PRAGMA busy_timeout=0")  # other processes' write locks: see locking.py
        self._file_lock = WriterFileLock(self.path + ".writelock")
        self._reader = _connect(self.path, self.cache_mib)
        self._reader.execute("PRAGMA query_only=ON")

    async def close(self) -> None:
        for conn in (self._reader, self._writer):
            if conn is not None:
                conn.close()
        self._reader = self._writer = None
        if self._file_lock is not None:
            self._file_lock.close()
            self._file_lock = None

    @property
    def reader(self) -> sqlite3.Connection:
        if self._reader is None:
            raise RuntimeError("store is not open")
        return self._reader

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[SQLiteTransaction]:
        async with self._lock:
            conn, file_lock = self._writer, self._file_lock
            if conn is None or file_lock is None:
                raise RuntimeError("store is not open")
            await file_lock.acquire()
            try:
                async with self._write(conn) as tx:
                    yield tx
            finally:
                file_lock.release()

    @asynccontextmanager
    async def _write(self, conn: sqlite3.Connection) -> AsyncIterator[SQLiteTransaction]:
        """``BEGIN IMMEDIATE`` … ``COMMIT`` (or ``ROLLBACK``) on the writer, this process's and file lock held."""
        await begin_immediate(conn)
        started = time.perf_counter()
        try:
            tx = SQLiteTransaction(conn)
            yield tx
            await tx.run_before_commit()
        except BaseException:
            conn.execute("ROLLBACK")
            metrics.STORE_TRANSACTION_SECONDS.labels("sqlite", "rollback").observe(time.perf_counter() - started)
            raise
        # The fsync of synchronous=FULL happens here, in a thread, so reads continue meanwhile. The commit
        # must not be abandoned half-way if the waiting task is cancelled (shutdown): the connection could be
        # closed under it.
        commit = asyncio.ensure_future(asyncio.to_thread(conn.execute, "COMMIT"))
        try:
            await asyncio.shield(commit)
        except asyncio.CancelledError:
            await asyncio.wait([commit])
            raise
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        metrics.STORE_TRANSACTION_SECONDS.labels("sqlite", "commit").observe(time.perf_counter() - started)

    async def run_transaction(self, fn: Callable[[SQLiteTransaction], Awaitable[T]]) -> T:
        """One attempt is enough: the writer lock serialises SQLite transactions, so none can lose a race."""
        async with self.transaction() as tx:
            return await fn(tx)

    def export_jobs(self) -> SQLiteExportJobs:
        """Bulk export jobs and their files (:mod:`.export_jobs`)."""
        from fhir_server.store.sqlite.export_jobs import SQLiteExportJobs

        return SQLiteExportJobs(self)

    async def read(self, resource_type: str, id: str) -> ResourceVersion | None:
        return _current(self.reader, resource_type, id)

    async def vread(self, resource_type: str, id: str, version_id: int) -> ResourceVersion | None:
        row = self.reader.execute(
            f"SELECT {_VERSION_COLUMNS}, method FROM history WHERE rtype = ? AND id = ? AND vid = ?",
            (resource_type, id, version_id),
        ).fetchone()
        return None if row is None else version_from_row(row[:6], row[6])

    async def history(self, query: HistoryQuery) -> HistoryPage:
        where, args = [], []
        if query.resource_type is not None:
            where.append("h.rtype = ?")
            args.append(query.resource_type)
        if query.id is not None:
            where.append("h.id = ?")
            args.append(query.id)
        if query.since is not None:
            where.append("h.last_updated >= ?")
            args.append(query.since)
        if query.at is not None:
            # The version current at `at`: written at or before it, and no later version written by then.
            where.append("h.last_updated <= ? AND NOT EXISTS (SELECT 1 FROM history n WHERE n.rtype = h.rtype"
                         " AND n.id = h.id AND n.seq > h.seq AND n.last_updated <= ?)")
            args += [query.at, query.at]
        filters = " AND ".join(where) or "1"
        total = None
        if query.want_total:
            total = self.reader.execute(f"SELECT count(*) FROM history h WHERE {filters}", args).fetchone()[0]
        page_sql = filters + (" AND h.seq < ?" if query.cursor else "")
        page_args = [*args, _history_cursor(query.cursor)] if query.cursor else list(args)
        rows = self.reader.execute(
            f"SELECT h.seq, h.rtype, h.id, h.vid, h.last_updated, h.deleted, h.body, h.method FROM history h"
            f" WHERE {page_sql} ORDER BY h.seq DESC LIMIT ?",
            [*page_args, query.count + 1],
        ).fetchall()
        more = len(rows) > query.count
        rows = rows[: query.count]
        versions = [version_from_row(r[1:7], r[7]) for r in rows]
        return HistoryPage(versions, str(rows[-1][0]) if more and rows else None, total)

    async def search(self, query: SearchQuery) -> SearchPage:
        return search.run_search(self.reader, query)

    async def read_many(self, references: list[tuple[str, str]]) -> list[ResourceVersion]:
        found: list[ResourceVersion] = []
        for start in range(0, len(references), 400):
            chunk = references[start : start + 400]
            cond = " OR ".join(["(rtype = ? AND id = ?)"] * len(chunk))
            args = [v for pair in chunk for v in pair]
            rows = self.reader.execute(
                f"SELECT {_VERSION_COLUMNS} FROM resource WHERE deleted = 0 AND ({cond})", args
            ).fetchall()
            found += [version_from_row(r, "PUT") for r in rows]
        return found

    async def export(self, resource_type: str | None = None) -> AsyncIterator[ResourceVersion]:
        last = 0
        while True:
            sql = f"SELECT rid, {_VERSION_COLUMNS} FROM resource WHERE rid > ? AND deleted = 0"
            args: list[object] = [last]
            if resource_type:
                sql += " AND rtype = ?"
                args.append(resource_type)
            rows = self.reader.execute(sql + " ORDER BY rid LIMIT 500", args).fetchall()
            if not rows:
                return
            for r in rows:
                yield version_from_row(r[1:], "PUT")
            last = rows[-1][0]
