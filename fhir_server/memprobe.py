"""Opt-in memory probe for a worker (issue #18): where does a worker's RSS go over a soak?

Off by default. ``FHIR_MEMORY_PROBE=DIR`` makes each worker append one JSON line every
``FHIR_MEMORY_PROBE_SECONDS`` (10) to ``DIR/memory-<pid>.jsonl``: RSS split into anonymous, file and shared
pages, glibc's heap (bytes in use against bytes free but kept), SQLite's own bytes, Python's object count and gc
counters, the write-behind queue and the size of every bounded cache. ``FHIR_MEMORY_PROBE_TRACE=1`` also runs
tracemalloc and writes the top growth since the first sample (slow: attribution runs only).

Why a file and not an HTTP route: it is a diagnostic for the operator who started the process, it carries no
PHI (sizes and source lines only), and nothing is exposed on the network, with or without auth. The RSS
measured by ``benchmarks/mixed.py`` is sampled from outside; this tells which part of it grew.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import gc
import json
import logging
import os
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fhir_server import background

log = logging.getLogger("fhir_server")

Sizes = Callable[[], dict[str, int]]


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]


def _libc() -> ctypes.CDLL | None:
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None


def _sqlite_used() -> Callable[[], int] | None:
    name = ctypes.util.find_library("sqlite3")
    if name is None:
        return None
    fn = ctypes.CDLL(name).sqlite3_memory_used
    fn.restype = ctypes.c_int64
    return lambda: int(fn())


def proc_status() -> dict[str, int]:
    """RSS and its parts (kB) from /proc/self/status."""
    out = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "RssAnon", "RssFile", "RssShmem", "VmHWM"):
            out[key] = int(rest.split()[0])
    return out


def anonymous_maps() -> dict[str, int]:
    """Resident anonymous memory (kB) by kind of mapping: ``heap`` (glibc's main arena), ``pymalloc`` (Python's
    1 MiB object arenas, which glibc never sees), ``arena`` (glibc's other arenas, 64 MiB reservations),
    ``other`` (thread stacks, large mmapped buffers, library data)."""
    out = {"heap": 0, "pymalloc": 0, "arena": 0, "other": 0}
    size = 0
    name = ""
    with open("/proc/self/smaps") as smaps:
        for line in smaps:
            first = line.split(None, 1)[0]
            if "-" in first and not first.endswith(":"):
                start, end = (int(x, 16) for x in first.split("-"))
                size = (end - start) // 1024
                parts = line.split()
                name = parts[5] if len(parts) > 5 else ""
            elif first == "Anonymous:":
                kb = int(line.split()[1])
                if name == "[heap]":
                    out["heap"] += kb
                elif name:
                    out["other"] += kb
                elif size == 1024:
                    out["pymalloc"] += kb
                elif size >= 60 * 1024:
                    out["arena"] += kb
                else:
                    out["other"] += kb
    return out


def malloc_info(libc: ctypes.CDLL | None) -> dict[str, int]:
    """glibc's heap: ``in_use`` (live allocations), ``free_kept`` (freed, not returned), ``mmapped``."""
    if libc is None or not hasattr(libc, "mallinfo2"):
        return {}
    libc.mallinfo2.restype = _MallInfo2
    m = libc.mallinfo2()
    return {"arena": m.arena, "mmapped": m.hblkhd, "in_use": m.uordblks, "free_kept": m.fordblks,
            "top_pad": m.keepcost}


class Probe:
    """Samples this process every ``interval`` seconds into ``folder/memory-<pid>.jsonl``."""

    def __init__(self, folder: Path, interval: float, sizes: Sizes, trace: bool = False,
                 baseline_at: float = 120) -> None:
        self.path = folder / f"memory-{os.getpid()}.jsonl"
        self.interval = interval
        self.sizes = sizes
        self.trace = trace
        self.baseline_at = baseline_at  # tracemalloc: growth since the first sample at or after this (warm-up)
        self._libc = _libc()
        self._sqlite = _sqlite_used()
        self._task: asyncio.Task[None] | None = None
        self._baseline: tracemalloc.Snapshot | None = None
        self._started = time.monotonic()

    def sample(self) -> dict[str, Any]:
        row: dict[str, Any] = {"t": round(time.monotonic() - self._started, 1), **proc_status()}
        row["malloc"] = malloc_info(self._libc)
        row["anon"] = anonymous_maps()
        if self._sqlite is not None:
            row["sqlite"] = self._sqlite()
        row["gc"] = [s["collections"] for s in gc.get_stats()]
        row["objects"] = len(gc.get_objects())
        row["blocks"] = sys.getallocatedblocks()
        row["sizes"] = self.sizes()
        if self.trace:
            snap = tracemalloc.take_snapshot().filter_traces([tracemalloc.Filter(False, tracemalloc.__file__)])
            row["traced"] = tracemalloc.get_traced_memory()[0]
            if self._baseline is None and row["t"] >= self.baseline_at:
                self._baseline = snap
            elif self._baseline is not None:
                row["top"] = [f"{s.size_diff / 1024:+.0f} KiB {s.count_diff:+d} {s.traceback[0]}"
                              for s in snap.compare_to(self._baseline, "lineno")[:25]]
        return row

    async def _run(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a") as out:
            while True:
                try:
                    out.write(json.dumps(self.sample()) + "\n")
                    out.flush()
                except Exception:  # noqa: BLE001 - a diagnostic must never take the worker down
                    log.exception("memory probe sample failed")
                await asyncio.sleep(self.interval)

    def start(self) -> None:
        if self.trace and not tracemalloc.is_tracing():
            tracemalloc.start(1)
        self._task = asyncio.create_task(self._run(), name="memory-probe")

    async def stop(self) -> None:
        await background.cancel(self._task)
        self._task = None


def function_caches(smallest: int = 1024) -> dict[str, int]:
    """Entries in the server's ``lru_cache`` functions of ``maxsize`` ≥ ``smallest`` (the ones that can matter)."""
    out = {}
    for name, module in list(sys.modules.items()):
        if not name.startswith("fhir_server."):
            continue
        for attr, value in list(vars(module).items()):
            info = getattr(value, "cache_info", None)
            if callable(info) and getattr(value, "__module__", None) == name:
                stats = info()
                if stats.maxsize is None or stats.maxsize >= smallest:
                    out[f"{name.removeprefix('fhir_server.')}.{attr}"] = stats.currsize
    return out


def from_env(sizes: Sizes, env: dict[str, str] | None = None) -> Probe | None:
    """The probe ``FHIR_MEMORY_PROBE`` asks for, or None (the default: no probe)."""
    e = os.environ if env is None else env
    folder = e.get("FHIR_MEMORY_PROBE")
    if not folder:
        return None
    return Probe(Path(folder), float(e.get("FHIR_MEMORY_PROBE_SECONDS") or 10), sizes,
                 trace=e.get("FHIR_MEMORY_PROBE_TRACE") == "1",
                 baseline_at=float(e.get("FHIR_MEMORY_PROBE_BASELINE") or 120))
