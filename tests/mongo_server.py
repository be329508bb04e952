"""Start a throw-away SecantusDB server for the Mongo leg of the tests.

SecantusDB speaks the MongoDB wire protocol and, by default, advertises itself in ``hello`` as the primary of a
single-node replica set named ``secantus`` — so the store's replica-set check passes without any override and
the URI names the set like a production URI would.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pymongo import MongoClient
from pymongo.errors import PyMongoError

STARTUP_SECONDS = 30


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _answers_ping(port: int) -> bool:
    client: MongoClient[dict[str, object]] = MongoClient(
        f"mongodb://127.0.0.1:{port}/?directConnection=true", serverSelectionTimeoutMS=300)
    try:
        client.admin.command("ping")
        return True
    except PyMongoError:
        return False
    finally:
        client.close()


@contextmanager
def secantus_server(*extra_args: str) -> Iterator[str]:
    """Run ``secantusd-py`` on a free port with in-memory storage; yields a URI for :class:`MongoStore`.

    ``extra_args`` go to the server (``"--standalone"`` makes it present as a standalone ``mongod``).
    """
    exe = Path(sys.executable).parent / "secantusd-py"
    port = _free_port()
    log = tempfile.TemporaryFile()  # a file, not a pipe: a chatty server must never block on a full pipe
    proc = subprocess.Popen(
        [str(exe), "--port", str(port), "--storage-path", ":memory:", "--log-level", "WARNING", *extra_args],
        stdout=subprocess.DEVNULL, stderr=log,
    )
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while not _answers_ping(port):
            if proc.poll() is not None:
                log.seek(0)
                err = log.read().decode(errors="replace")
                raise RuntimeError(f"secantusd-py exited with {proc.returncode}: {err[-2000:]}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"secantusd-py did not answer ping on port {port} in {STARTUP_SECONDS}s")
            time.sleep(0.1)
        if "--standalone" in extra_args:
            yield f"mongodb://127.0.0.1:{port}/?directConnection=true"
        else:
            yield f"mongodb://127.0.0.1:{port}/?replicaSet=secantus"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
