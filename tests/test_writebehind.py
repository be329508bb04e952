"""The write-behind writer (decision AuditEvents): stopping loses nothing and never abandons a commit."""

from __future__ import annotations

import asyncio
from pathlib import Path

from fhir_server.repository.writebehind import WriteBehind
from fhir_server.store.base import HistoryQuery
from fhir_server.store.sqlite import SQLiteStore


async def test_stop_writes_every_queued_record_even_with_a_batch_in_flight(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "s.sqlite3")
    await store.open()
    writer = WriteBehind(store, max_batch=50)
    writer.start()
    for _ in range(500):
        writer.submit({"resourceType": "Basic", "code": {"text": "audit"}})
    await asyncio.sleep(0.01)  # a batch is now being written
    await writer.stop()
    await store.close()

    reopened = SQLiteStore(tmp_path / "s.sqlite3")
    await reopened.open()
    try:
        page = await reopened.history(HistoryQuery("Basic", count=1))
        assert page.total == 500
    finally:
        await reopened.close()


async def test_submit_assigns_the_id_the_record_is_stored_under(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "s.sqlite3")
    await store.open()
    try:
        writer = WriteBehind(store)
        record_id = writer.submit({"resourceType": "Basic", "code": {"text": "audit"}})
        await writer.flush()
        stored = await store.read("Basic", record_id)
        assert stored is not None and not stored.deleted
    finally:
        await store.close()


async def test_flush_waits_for_the_batch_the_task_is_writing(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "s.sqlite3")
    await store.open()
    writer = WriteBehind(store, max_batch=10)
    writer.start()
    try:
        for _ in range(30):
            writer.submit({"resourceType": "Basic", "code": {"text": "audit"}})
        await asyncio.sleep(0)  # the task has taken a batch off the queue
        await writer.flush()
        page = await store.history(HistoryQuery("Basic", count=1))
        assert page.total == 30
    finally:
        await writer.stop()
        await store.close()
