"""Latency statistics and the table the runner prints."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class Row:
    name: str
    value: str
    ratio: str = ""
    note: str = ""


def percentile(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    k = max(0, min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


def latencies(fn: Callable[[], object], n: int, warmup: int = 20) -> list[float]:
    """Milliseconds per call of ``fn`` over ``n`` calls after ``warmup`` unmeasured ones."""
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1000)
    return out


def p50_p95(samples: list[float]) -> tuple[float, float]:
    return statistics.median(samples), percentile(samples, 95)


def print_table(rows: list[Row]) -> None:
    widths = [max(len(r.name) for r in rows), max(len(r.value) for r in rows), max(len(r.ratio) for r in rows)]
    header = f"{'measure':<{widths[0]}}  {'value':>{widths[1]}}  {'ratio':>{max(widths[2], 5)}}  note"
    print(header)
    print("-" * len(header))
    for r in rows:
        print(f"{r.name:<{widths[0]}}  {r.value:>{widths[1]}}  {r.ratio:>{max(widths[2], 5)}}  {r.note}")
