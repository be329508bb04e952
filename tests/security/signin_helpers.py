"""Driving the web page sign-in over HTTP the way a browser does: PKCE pair, authorization request, the login
form (its CSRF token read from the HTML), the redirect, the code exchange."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from fhir_server.security.service import Security
from fhir_server.security.signin import PUBLIC_CLIENT_ID
from fhir_server.security.users import User, new_user

PASSWORD = "correct horse battery"
APP = "http://test/app/"
AUD = "http://test/fhir"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass
class Pkce:
    verifier: str
    challenge: str

    @classmethod
    def make(cls) -> Pkce:
        verifier = secrets.token_urlsafe(48)
        digest = hashlib.sha256(verifier.encode()).digest()
        return cls(verifier, base64.urlsafe_b64encode(digest).decode().rstrip("="))


async def add_user(security: Security, username: str = "ana", *, password: str = PASSWORD,
                   organization: str | None = "Organization/cp1", **kw: Any) -> User:
    user = new_user(username, password, organization=organization, **kw)
    assert await security.add_user(user)
    return user


def authorize_params(pkce: Pkce, *, state: str = "st-1", scope: str = "openid fhirUser user/*.cruds",
                     **changes: str | None) -> dict[str, str]:
    params: dict[str, str | None] = {
        "response_type": "code", "client_id": PUBLIC_CLIENT_ID, "redirect_uri": APP, "scope": scope,
        "state": state, "aud": AUD, "code_challenge": pkce.challenge, "code_challenge_method": "S256"}
    params.update(changes)
    return {k: v for k, v in params.items() if v is not None}


def csrf_of(page: str) -> str:
    m = _CSRF.search(page)
    assert m is not None, page
    return m.group(1)


def query_of(location: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


async def submit(client: httpx.AsyncClient, params: dict[str, str], username: str, password: str,
                 csrf: str | None = None) -> httpx.Response:
    """GET the login page, then POST the form as the browser would (with its cookie and CSRF token)."""
    page = await client.get("/fhir/auth/authorize", params=params)
    assert page.status_code == 200, page.text
    token = csrf if csrf is not None else csrf_of(page.text)
    data = {**params, "username": username, "password": password}
    if token:
        data["csrf_token"] = token
    return await client.post("/fhir/auth/authorize", data=data)


async def code_for(client: httpx.AsyncClient, pkce: Pkce, username: str = "ana", password: str = PASSWORD,
                   **changes: str | None) -> str:
    params = authorize_params(pkce, **changes)
    r = await submit(client, params, username, password)
    assert r.status_code == 302, r.text
    q = query_of(r.headers["location"])
    assert q["state"] == params["state"]
    return q["code"]


async def exchange(client: httpx.AsyncClient, code: str, verifier: str, redirect_uri: str = APP,
                   client_id: str = PUBLIC_CLIENT_ID) -> httpx.Response:
    return await client.post("/fhir/auth/token", data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri, "client_id": client_id,
        "code_verifier": verifier})


async def sign_in(client: httpx.AsyncClient, username: str = "ana", password: str = PASSWORD,
                  **changes: str | None) -> dict[str, Any]:
    """The whole flow; the token response."""
    pkce = Pkce.make()
    code = await code_for(client, pkce, username, password, **changes)
    r = await exchange(client, code, pkce.verifier)
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]
