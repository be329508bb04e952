"""Give freed heap memory back to the system every few seconds (glibc ``malloc_trim``), per worker.

Why: a worker's RSS otherwise follows the high-water mark of its C heap, not what it holds. SQLite's page
cache is the main churn: in WAL mode a connection drops its cached pages whenever another connection (another
worker, or the worker's own writer) has committed, and fills them again on the next reads, a few MB every
second under the mixed load; request and response buffers add more. glibc keeps what is freed inside its
arenas, and fragmentation (a long-lived object between freed pages) keeps the arenas from shrinking, so the
held-but-free part grew for the whole soak (docs/deploy.md, *Memory per worker*: measured with the memory
probe, ``fhir_server/memprobe.py``). ``malloc_trim(0)`` returns every whole free page inside the arenas
(``madvise(MADV_DONTNEED)``), not only the top of the heap; it takes well under a millisecond.

``FHIR_MALLOC_TRIM_SECONDS`` (default 10; 0 turns it off). Does nothing without glibc.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import logging
from collections.abc import Callable

from fhir_server import background

log = logging.getLogger("fhir_server")


def malloc_trim() -> Callable[[], int] | None:
    """glibc's ``malloc_trim(0)``, or None where the C library has none (musl, macOS)."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None
    fn = getattr(libc, "malloc_trim", None)
    if fn is None:
        return None
    fn.argtypes = [ctypes.c_size_t]
    fn.restype = ctypes.c_int
    return lambda: int(fn(0))


class Trimmer:
    """A background task of one worker: ``malloc_trim(0)`` every ``seconds``."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.trims = 0  # calls made (tests)
        self._trim = malloc_trim() if seconds > 0 else None
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._trim is not None and self._task is None:
            self._task = asyncio.create_task(self._run(), name="malloc-trim")

    async def _run(self) -> None:
        assert self._trim is not None
        while True:
            await asyncio.sleep(self.seconds)
            self._trim()
            self.trims += 1

    async def stop(self) -> None:
        await background.cancel(self._task)
        self._task = None
