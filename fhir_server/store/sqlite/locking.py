"""Taking SQLite's write lock when several server processes share the file (``fhir-server serve --workers N``).

SQLite lets one connection write at a time. Inside one process the store's ``asyncio.Lock`` already queues
writers; across processes the file lock decides. Waiting for it with SQLite's own busy handler would block the
worker's event loop (every request of that worker would stall behind the other worker's transaction), so the
writer connection has no busy timeout: ``BEGIN IMMEDIATE`` fails at once with SQLITE_BUSY, and this module
sleeps on the event loop (1 ms, doubling to 50 ms) and tries again. A client never sees "database is locked":
after :data:`WAIT_SECONDS` without the lock (a stuck process holding it) the request gets a 503 OperationOutcome
with ``Retry-After``, and nothing was written.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time

from fhir_server import metrics
from fhir_server.fhir.outcome import FHIRError

WAIT_SECONDS = 30.0
_FIRST_SLEEP, _MAX_SLEEP = 0.001, 0.05


class StoreBusy(FHIRError):
    """Another process held the write lock for longer than the store waits (503, issue code ``transient``)."""

    def __init__(self, diagnostics: str) -> None:
        FHIRError.__init__(self, 503, "transient", diagnostics, headers={"Retry-After": "1"})


def is_busy(error: sqlite3.OperationalError) -> bool:
    text = str(error).lower()
    return "locked" in text or "busy" in text


async def begin_immediate(conn: sqlite3.Connection, wait_seconds: float = WAIT_SECONDS) -> None:
    """``BEGIN IMMEDIATE`` on ``conn``, waiting without blocking the event loop while another process writes."""
    deadline = time.monotonic() + wait_seconds
    sleep = _FIRST_SLEEP
    while True:
        try:
            conn.execute("BEGIN IMMEDIATE")
            return
        except sqlite3.OperationalError as e:
            if not is_busy(e):
                raise
            if time.monotonic() >= deadline:
                raise StoreBusy(f"the SQLite store stayed locked by another process for {wait_seconds:.0f} s; "
                                "nothing was written — retry later") from e
        metrics.STORE_BUSY_RETRIES.labels("sqlite").inc()
        await asyncio.sleep(sleep)
        sleep = min(sleep * 2, _MAX_SLEEP)
