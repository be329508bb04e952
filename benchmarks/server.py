"""Start a real server process (uvicorn via the CLI) on a free port for a benchmark, and stop it after."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def running_server(data_dir: Path | None = None, env: dict[str, str] | None = None) -> Iterator[str]:
    """Yield the FHIR base URL of a freshly started server with its own data directory."""
    with server_process(data_dir, env) as (base, _proc):
        yield base


@contextmanager
def server_process(data_dir: Path | None = None,
                   env: dict[str, str] | None = None) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """Like :func:`running_server`, also yielding the process (``benchmarks.store_cpu`` reads its CPU time).

    Logs at ``warning``: the per-request log line would fill the stderr pipe nobody reads and block the server."""
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        cmd = [sys.executable, "-m", "fhir_server.cli", "serve", "--port", str(port),
               "--data-dir", str(data_dir or tmp)]
        environment = {**os.environ, "FHIR_AUTH": "off", "FHIR_LOG_LEVEL": "warning", **(env or {})}
        proc = subprocess.Popen(cmd, env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                try:
                    if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.1)
            else:
                raise RuntimeError("server did not start: " + (proc.stderr.read().decode() if proc.stderr else ""))
            yield f"{base}/fhir", proc
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
