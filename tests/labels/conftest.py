"""Labels at ingest over HTTP: a server with the ASCMI start-up content (the ascmi-sls-* ValueSets) loaded.

``labelled`` gives the HTTP client and the very store behind it, for the repository-level checks (import,
relabel, a Caller's Organization) that have no HTTP face yet.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from fhir_server.app import create_app
from fhir_server.settings import Settings
from fhir_server.store.base import Store
from tests.conftest import STORE, make_store


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path, auth="off", load_conformance=True, check_references=False)


@dataclass
class Labelled:
    client: httpx.AsyncClient
    store: Store


@pytest.fixture
async def labelled(settings: Settings, tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[Labelled]:
    store = make_store(STORE, tmp_path, request)
    app = create_app(settings, store)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
            yield Labelled(c, store)


@pytest.fixture
def client(labelled: Labelled) -> httpx.AsyncClient:
    return labelled.client
