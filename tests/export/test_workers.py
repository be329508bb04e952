"""``fhir-server serve --workers 2``: exports kicked off, polled and downloaded on whichever worker answers.

Jobs and files live in the store, so a job accepted by one worker is run by one of them (never twice) and its
files are served by both; a SIGKILL of the whole server mid-job leaves the job to be started over cleanly.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import STORE
from tests.ops.server import running, store_env

ASYNC = {"Prefer": "respond-async"}


@pytest.fixture
def env(request: pytest.FixtureRequest) -> dict[str, str]:
    uri = request.getfixturevalue("mongo_uri") if STORE == "mongo" else None
    return {**store_env(STORE, uri, f"export_{os.getpid()}_{abs(hash(request.node.nodeid))}"),
            "FHIR_LOAD_CONFORMANCE": "false", "FHIR_EXPORT_MAX_JOBS_PER_CLIENT": "10",
            "FHIR_EXPORT_FILE_BYTES": "4000", "FHIR_EXPORT_LEASE_SECONDS": "2"}


def fresh(method: str, url: str, **kwargs: Any) -> httpx.Response:
    """One request on its own connection, so that successive requests spread over the workers."""
    with httpx.Client(timeout=60) as http:
        return http.request(method, url, **kwargs)


def _finish(url: str, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        r = fresh("GET", url)
        if r.status_code != 202:
            assert r.status_code == 200, r.text
            return r.json()  # type: ignore[no-any-return]
        assert time.monotonic() < deadline, "the export did not finish"
        time.sleep(0.1)


def _load(base: str, n: int) -> set[str]:
    entries = [{"resource": {"resourceType": "Patient", "id": f"p{i}", "gender": "male"},
                "request": {"method": "PUT", "url": f"Patient/p{i}"}} for i in range(n)]
    r = fresh("POST", base, json={"resourceType": "Bundle", "type": "transaction", "entry": entries})
    assert r.status_code == 200, r.text[:300]
    return {f"p{i}" for i in range(n)}


def _ids(manifest: dict[str, Any]) -> list[str]:
    out = []
    for entry in manifest["output"]:
        r = fresh("GET", entry["url"])
        assert r.status_code == 200
        lines = r.content.splitlines()
        assert len(lines) == entry["count"]
        out += [json.loads(line)["id"] for line in lines]
    return out


def test_exports_across_two_workers(tmp_path: Path, env: dict[str, str]) -> None:
    with running(tmp_path / "data", tmp_path / "server.log", workers=2, env=env) as server:
        made = _load(server.base, 120)
        urls = []
        for _ in range(4):
            r = fresh("GET", f"{server.base}/$export", params={"_type": "Patient"}, headers=ASYNC)
            assert r.status_code == 202, r.text
            urls.append(r.headers["content-location"])
        for url in urls:
            manifest = _finish(url)
            assert len(manifest["output"]) > 1  # split files, each served by either worker
            got = _ids(manifest)
            assert sorted(got) == sorted(made)


def test_a_killed_server_leaves_no_half_export(tmp_path: Path, env: dict[str, str]) -> None:
    data = tmp_path / "data"
    with running(data, tmp_path / "a.log", workers=1, env={**env, "FHIR_EXPORT_WORKERS": "0"}) as server:
        made = _load(server.base, 300)
        r = fresh("GET", f"{server.base}/$export", params={"_type": "Patient"}, headers=ASYNC)
        url = r.headers["content-location"].replace(server.base, "{base}")
    with running(data, tmp_path / "b.log", workers=1, env=env) as server:
        status = fresh("GET", url.format(base=server.base))
        assert status.status_code in (200, 202)
        server.kill()  # wherever the job was: SIGKILL, nothing flushed
    with running(data, tmp_path / "c.log", workers=1, env=env) as server:
        manifest = _finish(url.format(base=server.base))
        assert sorted(_ids(manifest)) == sorted(made)
