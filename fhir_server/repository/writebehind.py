"""Write-behind for records that must not slow the request that causes them (AuditEvents of decisions).

Records are queued and written by one background task, many per store transaction (group commit), so a
decision does not wait for an fsync of its own. The price, documented in README: records queued in the last
moments before a crash (not a clean shutdown, which drains the queue) can be lost.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from fhir_server import metrics
from fhir_server.repository import resources as repo
from fhir_server.store.base import Store

log = logging.getLogger("fhir_server")


class WriteBehind:
    def __init__(self, store: Store, max_batch: int = 500) -> None:
        self.store = store
        self.max_batch = max_batch
        # (submitted at, resource); None: stop after what is queued
        self._queue: asyncio.Queue[tuple[float, dict[str, Any]] | None] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._pending = 0  # submitted and not yet committed (queued or in the batch being written)
        self._idle = asyncio.Event()
        self._idle.set()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="write-behind")

    def submit(self, resource: dict[str, Any]) -> str:
        """Queue a create; returns the id the resource will have."""
        resource = {**resource, "id": resource.get("id") or repo.new_id()}
        self._pending += 1
        self._idle.clear()
        self._queue.put_nowait((time.monotonic(), resource))
        metrics.WRITE_BEHIND_DEPTH.inc()
        return str(resource["id"])

    async def flush(self) -> None:
        """Return once everything submitted so far is committed (including a batch the task is writing)."""
        if self._task is not None and not self._task.done():
            await self._idle.wait()
            return
        while True:
            batch = self._take(None)
            if not batch:
                return
            await self._write(batch)

    async def stop(self) -> None:
        """Finish the batch in hand and everything queued, then stop (never cancel a write mid-commit)."""
        if self._task is not None:
            self._queue.put_nowait(None)
            await self._task
            self._task = None
        await self.flush()

    def _take(self, first: tuple[float, dict[str, Any]] | None) -> list[tuple[float, dict[str, Any]]]:
        batch = [first] if first is not None else []
        while not self._queue.empty() and len(batch) < self.max_batch:
            item = self._queue.get_nowait()
            if item is None:
                self._queue.put_nowait(None)  # seen again by _run once this batch is written
                break
            batch.append(item)
        return batch

    async def _run(self) -> None:
        while True:
            first = await self._queue.get()
            if first is None:
                return
            try:
                await self._write(self._take(first))
            except Exception:  # noqa: BLE001 - a background writer must survive one bad batch
                log.exception("write-behind batch failed")

    async def _write(self, batch: list[tuple[float, dict[str, Any]]]) -> None:
        try:
            async with self.store.transaction() as tx:
                for _, resource in batch:
                    await repo.update(tx, resource["resourceType"], resource["id"], resource, check_refs=False,
                                      method="POST")
            now = time.monotonic()
            for submitted, _ in batch:
                metrics.WRITE_BEHIND_LAG.observe(now - submitted)
        finally:
            metrics.WRITE_BEHIND_DEPTH.dec(len(batch))
            self._pending -= len(batch)
            if self._pending <= 0:
                self._pending = 0
                self._idle.set()
