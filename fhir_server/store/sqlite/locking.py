"""Taking SQLite's write lock when several server processes share the file (``fhir-server serve --workers N``).

SQLite lets one connection write at a time. Inside one process the store's ``asyncio.Lock`` already queues
writers; across processes the file lock decides. Waiting for it with SQLite's own busy handler would block the
worker's event loop (every request of that worker would stall behind the other worker's transaction), so the
writer connection has no busy timeout: ``BEGIN IMMEDIATE`` fails at once with SQLITE_BUSY, and this module
sleeps on the event loop (1 ms, doubling to 50 ms) and tries again. A client never sees "database is locked":
after :data:`WAIT_SECONDS` without the lock (a stuck process holding it) the request gets a 503 OperationOutcome
with ``Retry-After``, and nothing was written.

Polling wastes the lock: a writer that found it taken sleeps up to 50 ms while the holder may commit after 5, so
with two workers the file sat unlocked much of the time (``--workers 2`` gained 0–13 % at concurrency 4). The
store's writers therefore first take an exclusive ``flock`` on a file beside the database
(:class:`WriterFileLock`) and hold it until COMMIT or ROLLBACK: the kernel wakes the next waiting process the
moment it is released. The wait runs in a thread so the event loop goes on. The polling above stays as the
fallback for a writer that does not take the file lock (the ``sqlite3`` shell, an older version).
"""

from __future__ import annotations

import asyncio
import fcntl
import os
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


class WriterFileLock:
    """An exclusive ``flock`` on ``<database>.writelock`` that the store's writer holds from before ``BEGIN IMMEDIATE``
    until after COMMIT/ROLLBACK, so that writers in other processes are woken at once instead of polling.

    Inside one process the store's ``asyncio.Lock`` admits one writer at a time, so one descriptor is enough.
    ``flock`` belongs to the open file description: a process's own descriptor never blocks itself, but two
    processes (or two stores on one file in a test) exclude each other.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self._fd = self._open()

    def _open(self) -> int:
        return os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)

    def close(self) -> None:
        os.close(self._fd)  # releases the lock if held

    async def acquire(self, wait_seconds: float = WAIT_SECONDS) -> None:
        """Take the lock; raise :class:`StoreBusy` after ``wait_seconds`` without it (nothing was written)."""
        fd = self._fd
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # uncontended: one system call, no thread
            return
        except BlockingIOError:
            pass
        metrics.STORE_LOCK_WAITS.labels("sqlite").inc()
        waiter = asyncio.ensure_future(asyncio.to_thread(fcntl.flock, fd, fcntl.LOCK_EX))
        try:
            await asyncio.wait_for(asyncio.shield(waiter), wait_seconds)
        except BaseException as e:
            # The thread cannot be interrupted and may still get the lock later: that descriptor is given up (closed
            # when the wait ends, which releases whatever it got) and later transactions use a fresh one.
            self._fd = self._open()
            waiter.add_done_callback(lambda _: os.close(fd))
            if isinstance(e, TimeoutError):
                raise StoreBusy(f"the SQLite store stayed locked by another process for {wait_seconds:.0f} s; "
                                "nothing was written — retry later") from None
            raise

    def release(self) -> None:
        fcntl.flock(self._fd, fcntl.LOCK_UN)
