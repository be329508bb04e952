"""The server's Prometheus metrics: one module of named instruments that any layer may import and bump.

It knows nothing of HTTP or of a store driver, so the store (transaction latency), the write-behind queue
(depth, lag), the consent gate (decision cache hits) and subscriptions (delivery lag) can all report here
without depending on one another. ``GET /metrics`` (``fhir_server.api.observability``) renders them.

Several workers: ``fhir-server serve --workers N`` sets ``PROMETHEUS_MULTIPROC_DIR`` before the workers start,
so prometheus-client keeps each worker's values in files there and ``/metrics`` — answered by whichever worker
the request reaches — sums counters and histograms over all of them; gauges say how they combine
(``livesum``: the queue depth of live workers; ``max``: the worst delivery lag). With one worker and no
directory, the values live in this process.

Hooks for other rooms (names are stable; import the functions, not the instruments, where you can):

>>> from fhir_server import metrics
>>> metrics.decision_cache(hit=True)      # the gate's decision cache answered
>>> metrics.decision_cache(hit=False)     # it had to decide
>>> metrics.set_subscription_delivery_lag(0.25)   # seconds from the write to the delivered notification
"""

from __future__ import annotations

import os
from pathlib import Path

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

# Latency buckets (seconds): the FHIR targets are milliseconds; transactions and bundles reach seconds.
_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

REQUESTS = Counter("fhir_http_requests", "HTTP requests answered, by route template and status",
                   ["method", "route", "status"])
REQUEST_SECONDS = Histogram("fhir_http_request_duration_seconds", "HTTP request latency by route template",
                            ["method", "route"], buckets=_BUCKETS)
STORE_TRANSACTION_SECONDS = Histogram("fhir_store_transaction_duration_seconds",
                                      "Store write transactions, from begin to commit or rollback",
                                      ["store", "outcome"], buckets=_BUCKETS)
STORE_BUSY_RETRIES = Counter("fhir_store_busy_retries", "SQLite write transactions that waited for another "
                             "process's write lock and tried again", ["store"])
STORE_LOCK_WAITS = Counter("fhir_store_lock_waits", "SQLite write transactions that found another process's "
                           "writer holding the write lock file and waited for it to be released", ["store"])
WRITE_BEHIND_DEPTH = Gauge("fhir_write_behind_queue_depth", "Audit records submitted and not yet committed",
                           multiprocess_mode="livesum")
WRITE_BEHIND_LAG = Histogram("fhir_write_behind_lag_seconds", "From submitting an audit record to its commit "
                             "(what a crash can lose)", buckets=_BUCKETS)
DECISION_CACHE = Counter("fhir_decision_cache_lookups", "Consent gate decision cache lookups", ["result"])
SUBSCRIPTION_DELIVERY_LAG = Gauge("fhir_subscription_delivery_lag_seconds",
                                  "Seconds from a matched write to its notification's delivery (latest)",
                                  multiprocess_mode="max")


def decision_cache(hit: bool) -> None:
    """The consent gate reports each decision cache lookup; the hit rate is hit / (hit + miss)."""
    DECISION_CACHE.labels("hit" if hit else "miss").inc()


def set_subscription_delivery_lag(seconds: float) -> None:
    SUBSCRIPTION_DELIVERY_LAG.set(seconds)


def multiprocess_dir() -> Path | None:
    value = os.environ.get(MULTIPROC_ENV)
    return Path(value) if value else None


def render() -> tuple[bytes, str]:
    """The exposition text and its content type: every worker's values when several share a directory."""
    if multiprocess_dir() is None:
        return generate_latest(), CONTENT_TYPE_LATEST
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return generate_latest(registry), CONTENT_TYPE_LATEST


def forget_dead_workers() -> None:
    """Drop the live-gauge files of workers that no longer run (killed, not shut down), so a restarted worker's
    queue depth is not summed with a dead one's last value."""
    folder = multiprocess_dir()
    if folder is None or not folder.is_dir():
        return
    for path in folder.glob("gauge_live*_*.db"):
        pid_text = path.stem.rsplit("_", 1)[-1]
        if pid_text.isdigit() and not _alive(int(pid_text)):
            multiprocess.mark_process_dead(int(pid_text), str(folder))  # type: ignore[no-untyped-call]


def worker_exited() -> None:
    """A worker's clean shutdown: its live gauges leave the sums."""
    if multiprocess_dir() is not None:
        multiprocess.mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
