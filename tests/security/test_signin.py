"""Sign-in for people (issue #19): SMART standalone launch, authorization code + PKCE, over real HTTP on the store
chosen by STORE, with real users (scrypt hashes) and the tokens the server issues."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import httpx
import pytest

from fhir_server.app import create_app
from fhir_server.security.signin import PUBLIC_CLIENT_ID
from fhir_server.settings import Settings
from tests.conftest import STORE, make_store
from tests.security.conftest import Secure, bearer
from tests.security.signin_helpers import (
    APP,
    PASSWORD,
    Pkce,
    add_user,
    authorize_params,
    code_for,
    csrf_of,
    exchange,
    query_of,
    sign_in,
    submit,
)


async def _patient_with_observation(secure: Secure) -> str:
    admin = bearer(await secure.admin_token())
    r = await secure.client.post("/fhir/Patient", json={"resourceType": "Patient", "name": [{"family": "Lopez"}]},
                                 headers=admin)
    assert r.status_code == 201, r.text
    pid = r.json()["id"]
    r = await secure.client.post("/fhir/Observation", headers=admin, json={
        "resourceType": "Observation", "status": "final", "code": {"text": "weight"},
        "subject": {"reference": f"Patient/{pid}"}})
    assert r.status_code == 201, r.text
    return str(pid)


async def test_code_flow_gives_a_token_that_sees_what_the_organization_sees(secure: Secure) -> None:
    pid = await _patient_with_observation(secure)
    await add_user(secure.security, "ana", organization="Organization/cp1", display="Ana López")
    answer = await sign_in(secure.client, "Ana")  # usernames are compared without case
    assert answer["token_type"] == "Bearer"
    assert answer["expires_in"] == 900
    assert answer["scope"] == "user/*.cruds"
    assert answer["user"] == {"username": "ana", "organization": "Organization/cp1", "display": "Ana López"}
    staff = bearer(answer["access_token"])
    # a Care Partner's client for the same Organization, for comparison
    _, partner_token = await secure.partner(organization="Organization/cp1")
    partner = bearer(partner_token)
    for headers in (staff, partner):
        assert (await secure.client.get(f"/fhir/Patient/{pid}", headers=headers)).status_code == 404
        found = await secure.client.get("/fhir/Observation", params={"subject": f"Patient/{pid}"}, headers=headers)
        assert found.status_code == 200 and found.json().get("entry", []) == []
        r = await secure.client.post("/fhir/Organization", json={"resourceType": "Organization", "name": "x"},
                                     headers=headers)
        assert r.status_code == 403, r.text
    # an administrator user sees everything
    await add_user(secure.security, "root", organization=None)
    admin = bearer((await sign_in(secure.client, "root"))["access_token"])
    assert (await secure.client.get(f"/fhir/Patient/{pid}", headers=admin)).status_code == 200
    found = await secure.client.get("/fhir/Observation", params={"subject": f"Patient/{pid}"}, headers=admin)
    assert len(found.json()["entry"]) == 1


async def test_scopes_granted_are_requested_within_allowed(secure: Secure) -> None:
    await add_user(secure.security, "reader", scope_list=["user/Patient.rs user/Consent.rs"])
    answer = await sign_in(secure.client, "reader", scope="user/*.read launch/patient openid")
    assert answer["scope"] == "user/Consent.rs user/Patient.rs"
    token = bearer(answer["access_token"])
    r = await secure.client.post("/fhir/Patient", json={"resourceType": "Patient"}, headers=token)
    assert r.status_code == 403
    assert r.json()["issue"][0]["code"] == "forbidden"


async def test_login_page_is_a_csrf_protected_form_in_the_chosen_language(secure: Secure) -> None:
    params = authorize_params(Pkce.make())
    r = await secure.client.get("/fhir/auth/authorize", params=params)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    assert "script-src" not in r.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
    assert r.headers["cache-control"] == "no-store"
    assert '<html lang="en">' in r.text and 'for="username"' in r.text and 'for="password"' in r.text
    assert csrf_of(r.text)
    assert "ascmi_login_csrf" in r.headers["set-cookie"] and "httponly" in r.headers["set-cookie"].lower()
    es = await secure.client.get("/fhir/auth/authorize", params={**params, "ui_locales": "es-MX"})
    assert '<html lang="es">' in es.text and "Contraseña" in es.text
    secure.client.cookies.set("ascmi_lang", "vi")
    vi = await secure.client.get("/fhir/auth/authorize", params=params)
    assert '<html lang="vi">' in vi.text and "Mật khẩu" in vi.text
    secure.client.cookies.delete("ascmi_lang")
    zh = await secure.client.get("/fhir/auth/authorize", params=params, headers={"Accept-Language": "zh-TW,en;q=0.5"})
    assert '<html lang="zh-Hant">' in zh.text and "密碼" in zh.text


async def test_wrong_verifier_is_invalid_grant_and_burns_the_code(secure: Secure) -> None:
    await add_user(secure.security)
    pkce = Pkce.make()
    code = await code_for(secure.client, pkce)
    r = await exchange(secure.client, code, Pkce.make().verifier)
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
    r = await exchange(secure.client, code, pkce.verifier)
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"


async def test_a_code_is_single_use_and_its_reuse_revokes_the_token(secure: Secure) -> None:
    await add_user(secure.security)
    pkce = Pkce.make()
    code = await code_for(secure.client, pkce)
    first = await exchange(secure.client, code, pkce.verifier)
    assert first.status_code == 200
    again = await exchange(secure.client, code, pkce.verifier)
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"
    assert "access_token" not in again.json()
    # a code used twice may have been stolen: the token the first use got is revoked (RFC 6749 §4.1.2)
    r = await secure.client.get("/fhir/Patient", headers=bearer(first.json()["access_token"]))
    assert r.status_code == 401


async def test_code_bound_to_redirect_uri_and_client(secure: Secure) -> None:
    await add_user(secure.security)
    pkce = Pkce.make()
    code = await code_for(secure.client, pkce)
    r = await exchange(secure.client, code, pkce.verifier, redirect_uri="http://test/app/other")
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
    code = await code_for(secure.client, pkce)
    r = await exchange(secure.client, code, pkce.verifier, client_id="someone-else")
    assert r.status_code == 401 and r.json()["error"] == "invalid_client"


async def test_expired_code_is_refused(secure: Secure) -> None:
    await add_user(secure.security)
    secure.app.state.signin.code_seconds = 0.5
    pkce = Pkce.make()
    code = await code_for(secure.client, pkce)
    await asyncio.sleep(1.0)
    r = await exchange(secure.client, code, pkce.verifier)
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"


async def test_unregistered_redirect_uri_gets_an_error_page_never_a_redirect(secure: Secure) -> None:
    for changes in ({"redirect_uri": "https://evil.example/app/"}, {"redirect_uri": "http://test/app"},
                    {"redirect_uri": "http://test/app/?x=1"}, {"redirect_uri": None}, {"client_id": "other"}):
        params = authorize_params(Pkce.make(), **changes)
        r = await secure.client.get("/fhir/auth/authorize", params=params)
        assert r.status_code == 400, changes
        assert "location" not in r.headers
        assert "evil.example" not in r.text
        r = await secure.client.post("/fhir/auth/authorize", data={**params, "username": "a", "password": "b"})
        assert r.status_code == 400 and "location" not in r.headers


async def test_bad_requests_with_a_valid_redirect_go_back_with_an_error(secure: Secure) -> None:
    cases = [({"response_type": "token"}, "unsupported_response_type"),
             ({"code_challenge_method": "plain"}, "invalid_request"),
             ({"code_challenge": None}, "invalid_request"),
             ({"aud": "https://other.example/fhir"}, "invalid_request"),
             ({"scope": "system/*.cruds"}, "invalid_scope")]
    for changes, error in cases:
        r = await secure.client.get("/fhir/auth/authorize", params=authorize_params(Pkce.make(), **changes))
        assert r.status_code == 302, changes
        location = r.headers["location"]
        assert location.startswith(APP)
        assert query_of(location)["error"] == error and query_of(location)["state"] == "st-1"


async def test_wrong_password_unknown_user_and_disabled_user_look_the_same(secure: Secure) -> None:
    await add_user(secure.security, "ana")
    await add_user(secure.security, "gone")
    from dataclasses import replace

    user = await secure.security.user("gone", fresh=True)
    assert user is not None
    await secure.security.replace_user(replace(user, active=False))
    answers = []
    for username, password in (("ana", "wrong password"), ("nobody", PASSWORD), ("gone", PASSWORD)):
        r = await submit(secure.client, authorize_params(Pkce.make()), username, password)
        assert "location" not in r.headers
        answers.append((r.status_code, re.search(r'role="alert">(.*?)</p>', r.text).group(1)))  # type: ignore[union-attr]
    assert answers[0] == answers[1] == answers[2]
    assert "incorrect" in answers[0][1]


async def test_missing_or_forged_csrf_token_is_refused(secure: Secure) -> None:
    await add_user(secure.security)
    params = authorize_params(Pkce.make())
    r = await submit(secure.client, params, "ana", PASSWORD, csrf="")
    assert r.status_code == 400 and "location" not in r.headers and "expired" in r.text
    r = await submit(secure.client, params, "ana", PASSWORD, csrf="eyJhbGciOiJIUzI1NiJ9.e30.forged")
    assert r.status_code == 400 and "location" not in r.headers
    # a valid token from another browser (another cookie) does not help either
    page = await secure.client.get("/fhir/auth/authorize", params=params)
    token = csrf_of(page.text)
    transport = httpx.ASGITransport(app=secure.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as other:
        await other.get("/fhir/auth/authorize", params=params)
        r = await other.post("/fhir/auth/authorize", data={**params, "username": "ana", "password": PASSWORD,
                                                           "csrf_token": token})
        assert r.status_code == 400 and "location" not in r.headers


async def test_sessions_expire(secure: Secure) -> None:
    """The person's token lives FHIR_USER_TOKEN_LIFETIME (900 s by default); the login form's token expires."""
    import jwt

    await add_user(secure.security)
    answer = await sign_in(secure.client)
    claims = jwt.decode(answer["access_token"], options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] == answer["expires_in"] == 900
    assert claims["user"] == "ana" and claims["sub"] == PUBLIC_CLIENT_ID
    secure.app.state.signin.form_seconds = 1
    params = authorize_params(Pkce.make())
    page = await secure.client.get("/fhir/auth/authorize", params=params)
    await asyncio.sleep(2.5)
    r = await secure.client.post("/fhir/auth/authorize", data={**params, "username": "ana", "password": PASSWORD,
                                                               "csrf_token": csrf_of(page.text)})
    assert r.status_code == 400 and "location" not in r.headers and "expired" in r.text


async def test_logout_revokes_the_token(secure: Secure) -> None:
    await add_user(secure.security)
    token = bearer((await sign_in(secure.client))["access_token"])
    assert (await secure.client.get("/fhir/Patient", headers=token)).status_code == 200
    assert (await secure.client.post("/fhir/auth/logout", headers=token)).status_code == 204
    r = await secure.client.get("/fhir/Patient", headers=token)
    assert r.status_code == 401 and r.json()["issue"][0]["code"] == "login"


async def test_disabled_user_token_stops_working(secure: Secure) -> None:
    from dataclasses import replace

    await add_user(secure.security)
    token = bearer((await sign_in(secure.client))["access_token"])
    user = await secure.security.user("ana", fresh=True)
    assert user is not None
    await secure.security.replace_user(replace(user, active=False))
    assert (await secure.client.get("/fhir/Patient", headers=token)).status_code == 401


async def test_smart_configuration_announces_the_code_flow(secure: Secure) -> None:
    doc = (await secure.client.get("/fhir/.well-known/smart-configuration")).json()
    assert doc["authorization_endpoint"] == "http://test/fhir/auth/authorize"
    assert "authorization_code" in doc["grant_types_supported"]
    assert doc["code_challenge_methods_supported"] == ["S256"]
    assert {"launch-standalone", "client-public", "permission-v2"} <= set(doc["capabilities"])
    meta = (await secure.client.get("/fhir/metadata")).json()
    uris = {e["url"]: e["valueUri"] for e in meta["rest"][0]["security"]["extension"][0]["extension"]}
    assert uris["authorize"] == "http://test/fhir/auth/authorize"
    assert PUBLIC_CLIENT_ID == "ascmi-care-partner-app"


async def test_behind_a_public_base_url_the_page_on_that_origin_may_sign_in(tmp_path: Path,
                                                                           request: pytest.FixtureRequest) -> None:
    settings = Settings(data_dir=tmp_path, load_conformance=False, auth="smart",
                        base_url="https://fhir.example.org/fhir")
    app = create_app(settings, make_store(STORE, tmp_path, request))
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as c:
            await add_user(app.state.security)
            pkce = Pkce.make()
            for redirect, aud in (("https://fhir.example.org/app/", "https://fhir.example.org/fhir"),
                                  (APP, "http://test/fhir")):
                code = await code_for(c, pkce, redirect_uri=redirect, aud=aud)
                assert (await exchange(c, code, pkce.verifier, redirect_uri=redirect)).status_code == 200
            r = await c.get("/fhir/auth/authorize", params=authorize_params(
                pkce, redirect_uri="https://fhir.example.org.evil.example/app/"))
            assert r.status_code == 400 and "location" not in r.headers
