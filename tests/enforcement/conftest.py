"""Enforcement tests: a real app with ``FHIR_AUTH=smart``, the ASCMI content, real keys and real tokens.

The ``client`` fixture carries an administrator's bearer token by default (the administrator files forms and
clinical data); Care Partners get their own registered clients and tokens (:func:`partner_headers`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from fhir_server.app import create_app
from fhir_server.settings import Settings
from tests.conftest import STORE, make_store
from tests.security.conftest import PURPOSES, Key, claims, form

KEY = Key.make("ES384")  # one key for every test client (key generation is the slow part)


async def token(client: httpx.AsyncClient, *, organization: str | None = None, purpose: str = "TREAT",
                scope: str = "system/*.cruds") -> tuple[str, str]:
    """Register a client (a Care Partner acting for ``organization``, or an administrator) and get a token
    through the real token endpoint; ``(client_id, access token)``."""
    from fhir_server.security.clients import new_client

    security = client.app.state.security  # type: ignore[attr-defined]
    registered = new_client(KEY.jwks(), organization=organization, scope_list=(scope,) if organization else (),
                            purposes=(purpose,) if organization else (), known_purposes=PURPOSES)
    await security.add_client(registered)
    extra: dict[str, Any] = {}
    if organization:
        extra["extensions"] = {"hl7-b2b": {"version": "1", "purpose_of_use": [purpose]}}
    assertion = KEY.sign(claims(registered.client_id, **extra))
    r = await client.post("/fhir/auth/token", data=form(assertion, scope))
    assert r.status_code == 200, r.text
    return registered.client_id, str(r.json()["access_token"])


async def partner_headers(client: httpx.AsyncClient, organization: str, purpose: str = "TREAT",
                          name: str | None = None) -> tuple[str, dict[str, str]]:
    """``(client_id, headers)`` of a new Care Partner client acting for ``organization``: a registered client and
    a real token when the app runs with authentication (this suite); the ``X-Test-Caller`` stand-in otherwise
    (suites of other rooms that run with ``FHIR_AUTH=off`` behind :class:`TestCallers`)."""
    app = getattr(client, "app", None)
    if app is not None and app.state.server.settings.auth != "off":
        client_id, access = await token(client, organization=organization, purpose=purpose)
        return client_id, {"Authorization": f"Bearer {access}"}
    client_id = name or f"client-{organization.split('/')[-1]}"
    return client_id, as_partner(organization, purpose, client_id)


HEADER = b"x-test-caller"


class TestCallers:
    """Test-only ASGI stand-in for the authentication edge, for suites running with ``FHIR_AUTH=off``:
    ``X-Test-Caller: <organization>|<purpose>|<client_id>`` sets ``request.state.caller``."""

    __test__ = False

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            raw = dict(scope.get("headers") or []).get(HEADER)
            if raw:
                from fhir_server.security.caller import Caller

                org, purpose, client_id = raw.decode().split("|")
                scope.setdefault("state", {})["caller"] = Caller(client_id, org, {"*": "cruds"}, purpose or None)
        await self.app(scope, receive, send)


def as_partner(organization: str, purpose: str = "TREAT", client: str | None = None) -> dict[str, str]:
    """``X-Test-Caller`` headers (with :class:`TestCallers`)."""
    return {"x-test-caller": f"{organization}|{purpose}|{client or 'client-' + organization.split('/')[-1]}"}


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path, auth="smart", load_conformance=True)


@pytest.fixture
async def client(settings: Settings, tmp_path: Path, request: pytest.FixtureRequest
                 ) -> AsyncIterator[httpx.AsyncClient]:
    store = make_store(STORE, tmp_path, request)
    app = create_app(settings, store)
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as c:
            c.app = app  # type: ignore[attr-defined]
            _, access = await token(c)
            c.headers["Authorization"] = f"Bearer {access}"
            yield c
