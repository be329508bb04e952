"""``fhir-server serve``: one process, or ``--workers N`` processes sharing one port (uvicorn's supervisor).

With several workers each process builds its own app from the environment (``create_app`` as a factory), so
the command puts ``--data-dir`` into ``FHIR_DATA_DIR`` before they start. What makes several workers correct
lives elsewhere and holds for any number of processes: every write re-reads the current version inside its
store transaction (SQLite's file lock, MongoDB's snapshot transactions), caches check a store version before
use, and each worker drains its own audit write-behind queue when it stops. The supervisor restarts a worker
that dies; SIGTERM (or Ctrl-C) stops every worker cleanly.

Metrics: prometheus-client's multiprocess mode. The command gives the workers a fresh
``PROMETHEUS_MULTIPROC_DIR`` (a temporary directory, or the one set in the environment, emptied first), so
``/metrics`` from any worker reports the sum over all of them.
"""

from __future__ import annotations

import logging.config
import os
import shutil
import tempfile
from pathlib import Path

from fhir_server import logs
from fhir_server.metrics import MULTIPROC_ENV
from fhir_server.settings import Settings


def _fresh_metrics_dir() -> Path | None:
    """The workers' shared metrics directory, emptied; returns it when this call created it (to remove later)."""
    given = os.environ.get(MULTIPROC_ENV)
    if given:
        folder = Path(given)
        folder.mkdir(parents=True, exist_ok=True)
        for stale in folder.glob("*.db"):  # values of a previous run would be summed in
            stale.unlink()
        return None
    created = tempfile.mkdtemp(prefix="fhir-server-metrics-")
    os.environ[MULTIPROC_ENV] = created
    return Path(created)


# Idle keep-alive connections are closed after this long. uvicorn's default (5 s) is shorter than a proxy's or a
# client pool's idle timeout (nginx 60 s, cloud load balancers 60 s), so a client could send a request on a
# connection at the moment the server closes it and see a reset; the server must be the one that waits longer.
KEEP_ALIVE_SECONDS = 75
HEALTHCHECK_SECONDS = 30
# glibc malloc settings for the worker processes (they start after this is set; an explicit value in the
# environment wins). Without them a worker's RSS kept the high-water mark of busy moments: per-thread arenas
# (commits run in threads) and a free list that an adaptive mmap threshold fills with large transient buffers
# (request and response bodies). Measured in the mixed soak: ~10 MB less RSS per worker, and a third of the
# free-but-kept malloc memory (docs/deploy.md, *Memory per worker*). Ignored by other C libraries.
MALLOC_ENV = {"MALLOC_ARENA_MAX": "2", "MALLOC_MMAP_THRESHOLD_": "131072"}


def serve(settings: Settings, host: str, port: int, workers: int = 1) -> None:
    import uvicorn

    log_config = logs.config(settings.log_format, settings.log_level)
    logging.config.dictConfig(log_config)
    if workers <= 1:
        from fhir_server.app import create_app

        uvicorn.run(create_app(settings), host=host, port=port, log_config=log_config, access_log=False,
                    timeout_keep_alive=KEEP_ALIVE_SECONDS)
        return
    os.environ["FHIR_DATA_DIR"] = str(settings.data_dir)
    for name, value in MALLOC_ENV.items():
        if not os.environ.get(name):
            os.environ[name] = value
    created = _fresh_metrics_dir()
    # The supervisor kills a worker that does not answer its health ping in time; a busy worker answers late
    # (the ping thread waits for the GIL), and killing it would drop its requests and its queued audit records.
    uvicorn.run("fhir_server.app:create_app", factory=True, workers=workers, host=host, port=port,
                log_config=log_config, access_log=False, timeout_keep_alive=KEEP_ALIVE_SECONDS,
                timeout_worker_healthcheck=HEALTHCHECK_SECONDS)
    if created is not None:
        shutil.rmtree(created, ignore_errors=True)
