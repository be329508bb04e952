"""A real ``fhir-server serve`` process (one or several workers) for the operations suites.

Its output goes to a file the test can read (the PHI grep reads it); the process leads its own process group, so
a test can SIGKILL the whole server — supervisor and workers — the way a power cut would.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.api.support import free_port

STARTUP_SECONDS = 60


class ServerProcess:
    def __init__(self, data_dir: Path, log_path: Path, workers: int = 1, env: dict[str, str] | None = None,
                 port: int | None = None) -> None:
        self.data_dir = data_dir
        self.log_path = log_path
        self.workers = workers
        self.env = {**os.environ, "FHIR_AUTH": "off", **(env or {})}
        self.port = port or free_port()
        self.root = f"http://127.0.0.1:{self.port}"
        self.base = f"{self.root}/fhir"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> ServerProcess:
        command = Path(sys.executable).with_name("fhir-server")
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child writes to it until it exits
        self.proc = subprocess.Popen(
            [str(command), "serve", "--port", str(self.port), "--data-dir", str(self.data_dir),
             "--workers", str(self.workers)],
            stdout=log, stderr=subprocess.STDOUT, env=self.env, start_new_session=True)
        log.close()
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(f"fhir-server exited with {self.proc.returncode}: {self.log()[-3000:]}")
            if self._ready_everywhere():
                return self
            if time.monotonic() > deadline:
                self.kill()
                raise AssertionError(f"fhir-server was not ready within {STARTUP_SECONDS} s: {self.log()[-3000:]}")
            time.sleep(0.2)

    def _ready_everywhere(self) -> bool:
        """Ready when the store answers and every worker has started its app (the workers share one socket, so
        one answer says nothing about the others: count their start-up lines)."""
        try:
            if httpx.get(f"{self.root}/health/ready", timeout=2).status_code != 200:
                return False
        except httpx.TransportError:
            return False
        return self.log().count("Application startup complete") >= self.workers

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def worker_pids(self) -> list[int]:
        """The supervisor's child processes that run the app (Linux /proc)."""
        assert self.proc is not None
        if self.workers <= 1:
            return [self.proc.pid]
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            if ppid == self.proc.pid and b"multiprocessing" in cmdline and b"resource_tracker" not in cmdline:
                found.append(int(entry.name))
        return sorted(found)

    def stop(self, timeout: float = 60) -> int:
        """SIGTERM, as a service manager stops it: workers drain and shut down cleanly."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        return int(self.proc.returncode or 0)

    def kill(self) -> None:
        """SIGKILL to the whole process group: nothing gets to flush."""
        assert self.proc is not None
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()


@contextmanager
def running(data_dir: Path, log_path: Path, workers: int = 1, env: dict[str, str] | None = None
            ) -> Iterator[ServerProcess]:
    server = ServerProcess(data_dir, log_path, workers, env).start()
    try:
        yield server
    finally:
        if server.proc is not None and server.proc.poll() is None:
            server.stop()
        if server.proc is not None and server.proc.poll() is None:
            server.kill()


def store_env(store: str, mongo_uri: str | None, database: str) -> dict[str, str]:
    """Environment selecting the store the suite runs on (``STORE=mongo``: the session's SecantusDB)."""
    if store == "mongo":
        assert mongo_uri is not None
        return {"MONGODB_URI": mongo_uri, "MONGODB_DATABASE": database}
    return {}
