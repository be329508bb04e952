"""Shared fixtures: a real app on a real store (a SQLite file; SecantusDB when STORE=mongo), driven over HTTP."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from fhir_server.app import create_app
from fhir_server.settings import Settings
from fhir_server.store.base import Store

STORE = os.environ.get("STORE", "sqlite")


@pytest.fixture(scope="session")
def mongo_uri() -> Iterator[str]:
    """A SecantusDB server on a free port for the whole session (only started when a test asks)."""
    from tests.mongo_server import secantus_server

    with secantus_server() as uri:
        yield uri


def make_store(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> Store:
    if kind == "mongo":
        from fhir_server.store.mongo import MongoStore

        uri = request.getfixturevalue("mongo_uri")
        return MongoStore(uri, f"test_{os.getpid()}_{abs(hash(request.node.nodeid))}")
    from fhir_server.store.sqlite import SQLiteStore

    return SQLiteStore(tmp_path / "fhir.sqlite3")


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """A plain FHIR server: the ASCMI start-up content (0.5 s per app) is off; ASCMI tests turn it on.

    Suites that are not about access run with ``FHIR_AUTH=off`` (every request an administrator); the security
    and enforcement suites build their own settings with auth on, and use real keys and tokens."""
    return Settings(data_dir=tmp_path, load_conformance=False, auth="off")


@pytest.fixture
async def client(settings: Settings, tmp_path: Path, request: pytest.FixtureRequest
                 ) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client on the app, on the store chosen by STORE (sqlite by default)."""
    store = make_store(STORE, tmp_path, request)
    app = create_app(settings, store)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
            yield c
