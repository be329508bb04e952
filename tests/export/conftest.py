"""Bulk export fixtures: real apps on a real store (SQLite file, or SecantusDB with STORE=mongo), over HTTP.

Callers: until the SMART authentication edge is on main, :class:`CallerHeader` plays its part for these tests —
it puts the :class:`Caller` described by the test-only ``X-Test-Caller`` header on ``request.state.caller``,
exactly where the real edge puts the verified caller. Everything downstream (jobs, gate, downloads) is real.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.types import ASGIApp, Receive, Scope, Send

from fhir_server.app import create_app
from fhir_server.security.caller import Caller
from fhir_server.settings import Settings
from fhir_server.store.base import Store
from tests.conftest import STORE, make_store


class CallerHeader:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            raw = dict(scope["headers"]).get(b"x-test-caller")
            if raw:
                c = json.loads(raw)
                scope.setdefault("state", {})["caller"] = Caller(c["client_id"], c.get("organization"),
                                                                 c.get("scopes", {"*": "cruds"}), c.get("purpose"))
        await self.app(scope, receive, send)


def as_caller(client_id: str, organization: str | None = None, scopes: dict[str, str] | None = None,
              purpose: str | None = None) -> dict[str, str]:
    """Headers that make a request come from this caller."""
    return {"X-Test-Caller": json.dumps({"client_id": client_id, "organization": organization,
                                         "scopes": scopes or {"*": "cruds"}, "purpose": purpose})}


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path, load_conformance=False, auth="off", export_file_bytes=64 * 1024,
                    export_lease_seconds=2.0, export_poll_seconds=0.05)


AppFactory = Callable[..., Any]


@pytest.fixture
def store_factory(tmp_path: Path, request: pytest.FixtureRequest) -> Callable[[], Store]:
    """A new Store object on the same database each call (a restarted server sees the same data)."""
    return lambda: make_store(STORE, tmp_path, request)


@pytest.fixture
def app_client(settings: Settings, store_factory: Callable[[], Store]) -> AppFactory:
    """``async with app_client(**setting_changes) as client``: an app on the shared store, stopped at exit."""

    @asynccontextmanager
    async def open_app(**changes: Any) -> AsyncIterator[httpx.AsyncClient]:
        app = create_app(settings.with_(**changes), store_factory())
        app.add_middleware(CallerHeader)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
                yield c

    return open_app


@pytest.fixture
async def client(app_client: AppFactory) -> AsyncIterator[httpx.AsyncClient]:
    async with app_client() as c:
        yield c
