"""The SQLite store waits for another process's write lock without blocking its event loop, and never lets
"database is locked" out: a lock held too long becomes a 503 OperationOutcome with nothing written."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

import pytest

from fhir_server import metrics
from fhir_server.store.sqlite import SQLiteStore
from fhir_server.store.sqlite.locking import StoreBusy, WriterFileLock, begin_immediate
from tests.conftest import STORE

pytestmark = pytest.mark.skipif(STORE == "mongo", reason="SQLite's file lock")


async def test_a_transaction_waits_for_another_process_lock_while_reads_go_on(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "fhir.sqlite3")
    await store.open()
    other = sqlite3.connect(tmp_path / "fhir.sqlite3", isolation_level=None)  # as another worker would
    try:
        other.execute("BEGIN IMMEDIATE")
        loop_stalls: list[float] = []

        async def tick() -> None:  # measures how long the event loop is blocked at a time
            last = time.perf_counter()
            for _ in range(40):
                await asyncio.sleep(0.01)
                now = time.perf_counter()
                loop_stalls.append(now - last - 0.01)
                last = now

        async def write() -> float:
            started = time.perf_counter()
            async with store.transaction():
                pass
            return time.perf_counter() - started

        async def release() -> None:
            await asyncio.sleep(0.3)
            other.execute("COMMIT")

        waited, _, _ = await asyncio.gather(write(), tick(), release())
        assert waited >= 0.29  # it did wait for the other writer…
        assert max(loop_stalls) < 0.1  # …without freezing the loop (SQLite's busy handler would have, for 0.3 s)
        assert await store.read("Patient", "x") is None
    finally:
        other.close()
        await store.close()


async def test_a_lock_held_too_long_is_a_503_and_not_a_driver_error(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "fhir.sqlite3")
    await store.open()
    other = sqlite3.connect(tmp_path / "fhir.sqlite3", isolation_level=None)
    writer = sqlite3.connect(tmp_path / "fhir.sqlite3", isolation_level=None, timeout=0)
    try:
        other.execute("BEGIN IMMEDIATE")
        with pytest.raises(StoreBusy) as raised:
            await begin_immediate(writer, wait_seconds=0.2)
        assert raised.value.status == 503 and raised.value.code == "transient"
        assert raised.value.headers["Retry-After"]
        assert not writer.in_transaction
    finally:
        other.close()
        writer.close()
        await store.close()


def _busy_retries() -> float:
    return metrics.STORE_BUSY_RETRIES.labels("sqlite")._value.get()  # type: ignore[attr-defined,no-any-return]


async def test_a_writer_in_another_process_is_woken_by_the_lock_file_not_by_polling(tmp_path: Path) -> None:
    """Two stores on one file stand for two workers: the second waits on the first's lock file and begins the
    moment the first commits, without a single SQLITE_BUSY retry (polling slept up to 50 ms per try)."""
    first, second = SQLiteStore(tmp_path / "fhir.sqlite3"), SQLiteStore(tmp_path / "fhir.sqlite3")
    await first.open()
    await second.open()
    order: list[str] = []
    try:
        retries = _busy_retries()
        async with first.transaction() as tx:
            waiting = asyncio.ensure_future(_write_marker(second, order))
            await asyncio.sleep(0.2)
            assert not waiting.done()  # held back by the lock file while the first writes…
            tx.connection.execute("CREATE TABLE marker (who TEXT)")
            order.append("first")
        await waiting
        assert order == ["first", "second"]
        assert _busy_retries() == retries  # …and woken by it, not by retrying BEGIN IMMEDIATE
        rows = first.reader.execute("SELECT who FROM marker").fetchall()
        assert rows == [("second",)]
    finally:
        await first.close()
        await second.close()


async def _write_marker(store: SQLiteStore, order: list[str]) -> None:
    async with store.transaction() as tx:
        tx.connection.execute("INSERT INTO marker VALUES ('second')")
        order.append("second")


async def test_a_lock_file_held_too_long_is_a_503_and_the_next_write_still_works(tmp_path: Path) -> None:
    holder, store = SQLiteStore(tmp_path / "fhir.sqlite3"), SQLiteStore(tmp_path / "fhir.sqlite3")
    await holder.open()
    await store.open()
    try:
        lock = WriterFileLock(str(tmp_path / "fhir.sqlite3.writelock"))
        await lock.acquire()  # another process's writer, stuck
        waiter = WriterFileLock(str(tmp_path / "fhir.sqlite3.writelock"))
        with pytest.raises(StoreBusy) as raised:
            await waiter.acquire(wait_seconds=0.2)
        assert raised.value.status == 503 and raised.value.code == "transient"
        lock.release()
        await asyncio.wait_for(waiter.acquire(), 5)  # a fresh descriptor; the abandoned wait let go of its lock
        waiter.release()
        async with store.transaction() as tx:
            tx.connection.execute("CREATE TABLE t (x)")
        lock.close()
        waiter.close()
    finally:
        await holder.close()
        await store.close()
