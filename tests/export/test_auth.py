"""Bulk export with ``FHIR_AUTH=smart``: real keys and real tokens (the security suite's helpers)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from fhir_server.app import create_app
from fhir_server.settings import Settings
from tests.conftest import STORE, make_store
from tests.export.support import ASYNC, wait
from tests.security.conftest import Secure, bearer


@pytest.fixture
async def secure(tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[Secure]:
    settings = Settings(data_dir=tmp_path, load_conformance=False, auth="smart", export_poll_seconds=0.05)
    app = create_app(settings, make_store(STORE, tmp_path, request))
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as c:
            yield Secure(c, app.state.security, app)


async def test_export_with_tokens_belongs_to_the_client_that_started_it(secure: Secure) -> None:
    c = secure.client
    admin = bearer(await secure.admin_token())
    assert (await c.post("/fhir/Patient", json={"resourceType": "Patient"}, headers=admin)).status_code == 201
    assert (await c.post("/fhir/Organization", json={"resourceType": "Organization", "name": "o"},
                         headers=admin)).status_code == 201
    assert (await c.get("/fhir/$export", headers=ASYNC)).status_code == 401  # no token
    r = await c.get("/fhir/$export", headers={**ASYNC, **admin})
    assert r.status_code == 202, r.text
    url = r.headers["content-location"]
    assert (await c.get(url)).status_code == 401
    m = (await wait(c, url, admin)).json()
    assert m["requiresAccessToken"] is True
    file_url = m["output"][0]["url"]
    assert (await c.get(file_url)).status_code == 401
    assert (await c.get(file_url, headers=admin)).status_code == 200
    # the same client with a new token may download; another client may not
    other = bearer(await secure.admin_token())
    for response in (await c.get(url, headers=other), await c.get(file_url, headers=other),
                     await c.delete(url, headers=other)):
        assert response.status_code == 404 and response.json()["issue"][0]["code"] == "not-found"


async def test_scopes_limit_what_a_token_exports(secure: Secure) -> None:
    c = secure.client
    admin = bearer(await secure.admin_token())
    assert (await c.post("/fhir/Patient", json={"resourceType": "Patient"}, headers=admin)).status_code == 201
    assert (await c.post("/fhir/Organization", json={"resourceType": "Organization", "name": "o"},
                         headers=admin)).status_code == 201
    client, key = await secure.register(scopes=("system/Patient.rs",))
    narrow = bearer(await secure.token(client, key, "system/Patient.rs"))
    r = await c.get("/fhir/$export", params={"_type": "Organization"}, headers={**ASYNC, **narrow})
    assert r.status_code == 403 and r.json()["issue"][0]["code"] == "forbidden"
    r = await c.get("/fhir/$export", headers={**ASYNC, **narrow})
    assert r.status_code == 202
    m = (await wait(c, r.headers["content-location"], narrow)).json()
    assert [o["type"] for o in m["output"]] == ["Patient"]
