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
import tempfile
from pathlib import Path

from fhir_server import logs
from fhir_server.metrics import MULTIPROC_ENV
from fhir_server.settings import Settings


def _fresh_metrics_dir() -> None:
    given = os.environ.get(MULTIPROC_ENV)
    if given:
        folder = Path(given)
        folder.mkdir(parents=True, exist_ok=True)
        for stale in folder.glob("*.db"):  # values of a previous run would be summed in
            stale.unlink()
    else:
        os.environ[MULTIPROC_ENV] = tempfile.mkdtemp(prefix="fhir-server-metrics-")


def serve(settings: Settings, host: str, port: int, workers: int = 1) -> None:
    import uvicorn

    log_config = logs.config(settings.log_format, settings.log_level)
    logging.config.dictConfig(log_config)
    common = {"host": host, "port": port, "log_config": log_config, "access_log": False}
    if workers <= 1:
        from fhir_server.app import create_app

        uvicorn.run(create_app(settings), **common)  # type: ignore[arg-type]
        return
    os.environ["FHIR_DATA_DIR"] = str(settings.data_dir)
    _fresh_metrics_dir()
    uvicorn.run("fhir_server.app:create_app", factory=True, workers=workers, **common)  # type: ignore[arg-type]
