"""The SQLite store waits for another process's write lock without blocking its event loop, and never lets
"database is locked" out: a lock held too long becomes a 503 OperationOutcome with nothing written."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

import pytest

from fhir_server.store.sqlite import SQLiteStore
from fhir_server.store.sqlite.locking import StoreBusy, begin_immediate
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
