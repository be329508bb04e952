"""Bulk export jobs on SQLite: a ``export_job`` row per job (state as JSON plus the columns queries need) and
``export_chunk`` rows holding the NDJSON files (see :mod:`fhir_server.store.export_jobs`).

Writes go through the store's writer transaction (one writer, serialised), so the per-client limit check and
the insert are one atomic step, and a claim cannot be taken twice.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING

from fhir_server.store.base import ResourceVersion
from fhir_server.store.export_jobs import ACTIVE, ExportJob, quota_key
from fhir_server.store.sqlite.rows import version_from_row

if TYPE_CHECKING:
    from fhir_server.store.sqlite.store import SQLiteStore

EXPORT_DDL = """
CREATE TABLE IF NOT EXISTS export_job (
    id          TEXT PRIMARY KEY,
    client_id   TEXT NOT NULL,
    status      TEXT NOT NULL,
    created     INTEGER NOT NULL,
    lease_until REAL NOT NULL DEFAULT 0,
    expires     REAL,
    doc         TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS export_job_client ON export_job (client_id, status);
CREATE INDEX IF NOT EXISTS export_job_status ON export_job (status, created);
CREATE INDEX IF NOT EXISTS export_job_expires ON export_job (expires);
CREATE TABLE IF NOT EXISTS export_chunk (
    job    TEXT NOT NULL,
    file   INTEGER NOT NULL,
    chunk  INTEGER NOT NULL,
    data   BLOB NOT NULL,
    PRIMARY KEY (job, file, chunk)
);
"""

_COLUMNS = "rtype, id, vid, last_updated, deleted, body"
# The export scan's two page queries; ``{typed}`` is ``"rtype = ? AND "`` for one type, empty across types.
SCAN_TIE = (f"SELECT rid, {_COLUMNS} FROM resource WHERE {{typed}}last_updated = ? AND rid > ?"
            " ORDER BY rid LIMIT ?")
SCAN_NEXT = (f"SELECT rid, {_COLUMNS} FROM resource WHERE {{typed}}last_updated > ? AND last_updated <= ?"
             " ORDER BY last_updated, rid LIMIT ?")


class SQLiteExportJobs:
    def __init__(self, store: SQLiteStore) -> None:
        self.store = store
        self._ready = False
        self._seq = 0

    async def _schema(self) -> None:
        if not self._ready:
            async with self.store.transaction() as tx:
                for statement in EXPORT_DDL.split(";"):
                    if statement.strip():
                        tx.connection.execute(statement)
            self._ready = True

    async def create(self, job: ExportJob, max_active: int) -> bool:
        await self._schema()
        async with self.store.transaction() as tx:
            conn = tx.connection
            marks = ",".join("?" * len(ACTIVE))
            active = conn.execute(f"SELECT count(*) FROM export_job WHERE client_id = ? AND status IN ({marks})",
                                  (quota_key(job.caller), *ACTIVE)).fetchone()[0]
            if active >= max_active:
                return False
            created = conn.execute("SELECT coalesce(max(created), 0) + 1 FROM export_job").fetchone()[0]
            conn.execute("INSERT INTO export_job (id, client_id, status, created, lease_until, expires, doc)"
                         " VALUES (?, ?, ?, ?, ?, ?, ?)",
                         (job.id, quota_key(job.caller), job.status, created, job.lease_until, job.expires,
                          json.dumps(job.to_record())))
        return True

    async def get(self, job_id: str) -> ExportJob | None:
        await self._schema()
        row = self.store.reader.execute("SELECT doc FROM export_job WHERE id = ?", (job_id,)).fetchone()
        return None if row is None else ExportJob.from_record(json.loads(row[0]))

    async def claim(self, owner: str, now: float, lease_seconds: float) -> ExportJob | None:
        await self._schema()
        async with self.store.transaction() as tx:
            conn = tx.connection
            row = conn.execute(
                "SELECT doc FROM export_job WHERE status = 'accepted'"
                " OR (status = 'running' AND lease_until < ?) ORDER BY created LIMIT 1", (now,)).fetchone()
            if row is None:
                return None
            job = ExportJob.from_record(json.loads(row[0]))
            if job.status == "running":  # its worker died: start over, never keep a half-written file
                conn.execute("DELETE FROM export_chunk WHERE job = ?", (job.id,))
            job.status, job.owner, job.lease_until, job.progress = "running", owner, now + lease_seconds, ""
            self._save(conn, job)
        return job

    @staticmethod
    def _save(conn: sqlite3.Connection, job: ExportJob) -> None:
        conn.execute("UPDATE export_job SET status = ?, lease_until = ?, expires = ?, doc = ? WHERE id = ?",
                     (job.status, job.lease_until, job.expires, json.dumps(job.to_record()), job.id))

    async def _mine(self, job_id: str, owner: str,
                    change: Callable[[sqlite3.Connection, ExportJob], ExportJob]) -> bool:
        """Apply ``change`` to the job if it is still running for ``owner`` (one writer transaction)."""
        async with self.store.transaction() as tx:
            row = tx.connection.execute("SELECT doc FROM export_job WHERE id = ?", (job_id,)).fetchone()
            if row is None:
                return False
            job = ExportJob.from_record(json.loads(row[0]))
            if job.owner != owner or job.status != "running":
                return False
            self._save(tx.connection, change(tx.connection, job))
        return True

    async def heartbeat(self, job_id: str, owner: str, lease_until: float, progress: str) -> bool:
        def renew(_: sqlite3.Connection, job: ExportJob) -> ExportJob:
            job.lease_until, job.progress = lease_until, progress
            return job

        return await self._mine(job_id, owner, renew)

    async def release(self, job_id: str, owner: str) -> None:
        def give_back(conn: sqlite3.Connection, job: ExportJob) -> ExportJob:
            conn.execute("DELETE FROM export_chunk WHERE job = ?", (job_id,))
            job.status, job.owner, job.lease_until = "accepted", None, 0.0
            return job

        await self._mine(job_id, owner, give_back)

    async def finish(self, job: ExportJob, owner: str) -> bool:
        done = ExportJob.from_record(job.to_record())
        done.owner = None
        return await self._mine(job.id, owner, lambda _conn, _old: done)

    async def add_chunk(self, job_id: str, file_no: int, chunk_no: int, data: bytes) -> None:
        async with self.store.transaction() as tx:
            tx.connection.execute("INSERT OR REPLACE INTO export_chunk (job, file, chunk, data) VALUES (?, ?, ?, ?)",
                                  (job_id, file_no, chunk_no, data))

    async def delete(self, job_id: str) -> bool:
        await self._schema()
        async with self.store.transaction() as tx:
            tx.connection.execute("DELETE FROM export_chunk WHERE job = ?", (job_id,))
            return tx.connection.execute("DELETE FROM export_job WHERE id = ?", (job_id,)).rowcount > 0

    async def chunks(self, job_id: str, file_no: int) -> AsyncIterator[bytes]:
        await self._schema()
        chunk = -1
        while True:
            row = self.store.reader.execute(
                "SELECT chunk, data FROM export_chunk WHERE job = ? AND file = ? AND chunk > ? ORDER BY chunk LIMIT 1",
                (job_id, file_no, chunk)).fetchone()
            if row is None:
                return
            chunk = row[0]
            yield bytes(row[1])

    async def expired(self, now: float) -> list[str]:
        await self._schema()
        rows = self.store.reader.execute("SELECT id FROM export_job WHERE expires < ?", (now,)).fetchall()
        return [r[0] for r in rows]

    async def scan(self, resource_type: str | None, since: str | None, until: str,
                   batch: int) -> AsyncIterator[list[ResourceVersion]]:
        """Pages in (last_updated, rid) order from ``resource_type_updated`` / ``resource_updated`` (both end in
        the rowid). Each page first finishes the rows sharing the last page's timestamp (``last_updated = ? AND
        rid > ?``: one index range), then moves on (``last_updated > ?``): a row-value ``(last_updated, rid) > …``
        would rescan a whole tie group per page — quadratic when a bundle wrote 100k resources in one instant."""
        typed = "rtype = ? AND " if resource_type else ""
        head: tuple[object, ...] = (resource_type,) if resource_type else ()
        low = since or ""
        last: tuple[str, int] | None = None
        reader = self.store.reader
        while True:
            rows: list[tuple[object, ...]] = []
            if last is not None:
                rows = reader.execute(SCAN_TIE.format(typed=typed), (*head, *last, batch)).fetchall()
                low = last[0]
            if len(rows) < batch:
                rows += reader.execute(SCAN_NEXT.format(typed=typed),
                                       (*head, low, until, batch - len(rows))).fetchall()
            if not rows:
                return
            last = (str(rows[-1][4]), int(rows[-1][0]))  # type: ignore[call-overload]
            yield [version_from_row(r[1:], "PUT") for r in rows if not r[5]]
