"""Decision tests over HTTP: one app per test module, its population filed through the intake endpoints.

The ASCMI start-up content (the Care Partner network Organization, the code systems) is loaded only with
``load_conformance=True``, hence the ``settings`` override. Building the population costs a few seconds, so the
``world`` fixture is module-scoped (and its tests run on the module's event loop).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio

from fhir_server.app import create_app
from fhir_server.settings import Settings
from tests.conftest import STORE, make_store
from tests.decision_http.world import World, build


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path, auth="off", load_conformance=True)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def world(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> AsyncIterator[World]:
    tmp = tmp_path_factory.mktemp("decision")
    app = create_app(Settings(data_dir=tmp, auth="off", load_conformance=True), make_store(STORE, tmp, request))
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
            w = await build(client)
            w.app = app
            yield w
