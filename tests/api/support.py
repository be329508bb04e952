"""Helpers shared by the REST tests: OperationOutcome assertions, sample resources, a real server process."""

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
from typing import Any

import httpx

SUBSETTED = "SUBSETTED"


def assert_outcome(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """The response is ``status`` with an OperationOutcome whose first issue has ``code``; returns that issue."""
    assert response.status_code == status, response.text
    body = response.json()
    assert body["resourceType"] == "OperationOutcome", body
    assert body["issue"][0]["code"] == code, body
    return body["issue"][0]  # type: ignore[no-any-return]


def patient(**fields: Any) -> dict[str, Any]:
    return {"resourceType": "Patient", "gender": "female", "birthDate": "1980-02-29", **fields}


async def create(client: httpx.AsyncClient, resource: dict[str, Any] | None = None) -> dict[str, Any]:
    resource = resource or patient()
    response = await client.post(f"/fhir/{resource['resourceType']}", json=resource)
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def fhir_server_process(data_dir: Path, host: str = "127.0.0.1", env: dict[str, str] | None = None
                        ) -> Iterator[str]:
    """``fhir-server serve`` on a free port; yields its FHIR base URL and stops the process afterwards.

    Its output goes to a file, not a pipe: the server logs a line per request, and an unread pipe would fill
    and stall it. ``env`` adds settings (``MONGODB_URI`` for the MongoDB store)."""
    port = free_port()
    command = Path(sys.executable).with_name("fhir-server")
    output = tempfile.TemporaryFile()
    proc = subprocess.Popen([str(command), "serve", "--host", host, "--port", str(port), "--data-dir",
                             str(data_dir)], stdout=output, stderr=subprocess.STDOUT,
                            env={**os.environ, "FHIR_AUTH": "off", **(env or {})})
    base = f"http://{host}:{port}/fhir"
    try:
        deadline = time.monotonic() + 20
        while True:
            if proc.poll() is not None:
                output.seek(0)
                raise AssertionError(f"fhir-server exited with {proc.returncode}: {output.read().decode()}")
            try:
                if httpx.get(f"{base}/metadata", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError("fhir-server did not answer within 20 s")
            time.sleep(0.1)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        output.close()
