"""Enforcement tests: a real app with the ASCMI content, callers set per request.

Until the authentication edge lands, a test-only ASGI wrapper sets ``request.state.caller`` from the
``X-Test-Caller`` header (``<organization>|<purpose>|<client_id>``; absent: the administrator).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from fhir_server.app import create_app
from fhir_server.security.caller import Caller
from fhir_server.settings import Settings
from tests.conftest import STORE, make_store

HEADER = b"x-test-caller"


class TestCallers:
    """ASGI wrapper: the caller named by the test header (the authentication edge's job in production)."""

    __test__ = False

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            raw = dict(scope.get("headers") or []).get(HEADER)
            if raw:
                org, purpose, client = raw.decode().split("|")
                scope.setdefault("state", {})["caller"] = Caller(client, org, {"*": "cruds"}, purpose or None)
        await self.app(scope, receive, send)


def as_partner(organization: str, purpose: str = "TREAT", client: str | None = None) -> dict[str, str]:
    """Headers of a request made by a Care Partner client acting for ``organization``."""
    return {"x-test-caller": f"{organization}|{purpose}|{client or 'client-' + organization.split('/')[-1]}"}


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path, auth="off", load_conformance=True)


@pytest.fixture
async def client(settings: Settings, tmp_path: Path, request: pytest.FixtureRequest
                 ) -> AsyncIterator[httpx.AsyncClient]:
    store = make_store(STORE, tmp_path, request)
    app = create_app(settings, store)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=TestCallers(app))
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
            c.app = app  # type: ignore[attr-defined]
            yield c
