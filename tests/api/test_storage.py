"""Storage as the REST layer sees it: durable SQLite settings and request-size limits."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from fhir_server.settings import Settings
from fhir_server.store.sqlite import SQLiteStore
from tests.api.support import assert_outcome, patient

LIMIT = 2000


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path, auth="off", max_body_bytes=LIMIT)


async def test_sqlite_store_uses_wal_and_synchronous_full(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "fhir.sqlite3")
    await store.open()
    try:
        assert store.reader.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert store.reader.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
        async with store.transaction() as tx:
            conn = tx.connection  # type: ignore[attr-defined]
            assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
            assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2
    finally:
        await store.close()


def _padded(size: int) -> bytes:
    body = patient(name=[{"family": "x"}])
    raw = httpx.Request("POST", "http://x", json=body).content
    pad = size - len(raw) - len(',"id":""')
    return raw[:-1] + b',"id":"' + b"a" * pad + b'"}'


async def test_body_at_the_limit_is_read(client: httpx.AsyncClient) -> None:
    body = _padded(LIMIT)
    assert len(body) == LIMIT
    response = await client.post("/fhir/Patient", content=body, headers={"Content-Type": "application/fhir+json"})
    assert response.status_code == 400  # read and validated (the long id is invalid), not refused for size


async def test_body_over_the_limit_with_content_length_returns_413(client: httpx.AsyncClient) -> None:
    body = _padded(LIMIT + 1)
    for method, path in (("POST", "/fhir/Patient"), ("PUT", "/fhir/Patient/a")):
        response = await client.request(method, path, content=body, headers={"Content-Type": "application/json"})
        assert_outcome(response, 413, "too-costly")


async def test_chunked_body_over_the_limit_returns_413(client: httpx.AsyncClient) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"resourceType":"Patient","name":[{"family":"'
        for _ in range(10):
            yield b"x" * 500
        yield b'"}]}'

    response = await client.post("/fhir/Patient", content=chunks(), headers={"Content-Type": "application/json"})
    assert "content-length" not in response.request.headers
    assert response.request.headers["transfer-encoding"] == "chunked"
    assert_outcome(response, 413, "too-costly")


async def test_lying_content_length_does_not_bypass_the_limit(client: httpx.AsyncClient) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(5):
            yield b" " * 1000

    response = await client.post("/fhir/Patient", content=chunks(),
                                 headers={"Content-Type": "application/json", "Content-Length": "10"})
    assert response.status_code in (400, 413)
