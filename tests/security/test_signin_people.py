"""People signed in to the web page, beyond the flow itself: lockout and sign-out shared by every worker (two
apps on one store), no enumeration by timing, audit of sign-ins and of people's requests, and people who share the
page's one client never share each other's export jobs, subscriptions or audit trail."""

from __future__ import annotations

import asyncio
import json
import re
import statistics
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from fhir_server.app import create_app
from fhir_server.security import login_page
from fhir_server.settings import Settings
from tests.conftest import STORE, make_store
from tests.security.conftest import Secure, bearer
from tests.security.signin_helpers import PASSWORD, Pkce, add_user, authorize_params, sign_in, submit

_ALERT = re.compile(r'role="alert">(.*?)</p>')


@asynccontextmanager
async def second_worker(settings: Settings, tmp_path: Path, request: pytest.FixtureRequest
                        ) -> AsyncIterator[httpx.AsyncClient]:
    """Another app on the same store (SQLite file or MongoDB database): a second worker or replica."""
    other = create_app(settings, make_store(STORE, tmp_path, request))
    async with other.router.lifespan_context(other):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=other), base_url="http://test") as c:
            yield c


async def _attempt(client: httpx.AsyncClient, username: str, password: str) -> httpx.Response:
    return await submit(client, authorize_params(Pkce.make()), username, password)


def _alert(r: httpx.Response) -> str:
    m = _ALERT.search(r.text)
    assert m is not None, r.text
    return m.group(1)


async def test_lockout_after_five_failures_counts_on_every_worker(
        secure: Secure, secure_settings: Settings, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    await add_user(secure.security, "ana")
    await add_user(secure.security, "bea")
    async with second_worker(secure_settings, tmp_path, request) as other:
        for i in range(5):
            r = await _attempt(secure.client if i % 2 else other, "ana", "wrong password")
            assert r.status_code == 200 and "incorrect" in _alert(r)
        for client in (secure.client, other):
            r = await _attempt(client, "ana", PASSWORD)  # the right password does not help now
            assert "location" not in r.headers
            assert "Try again in 15 minutes" in _alert(r)
        assert (await _attempt(other, "bea", PASSWORD)).status_code == 302  # others are not affected
        # an unknown name locks the same way, so the lock says nothing about who exists
        for _ in range(5):
            await _attempt(secure.client, "nobody", "x" * 10)
        assert "Try again" in _alert(await _attempt(other, "nobody", "x" * 10))


async def test_sign_out_on_one_worker_is_refused_on_another(
        secure: Secure, secure_settings: Settings, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    await add_user(secure.security)
    async with second_worker(secure_settings, tmp_path, request) as other:
        token = bearer((await sign_in(other))["access_token"])
        assert (await secure.client.get("/fhir/Patient", headers=token)).status_code == 200
        assert (await other.post("/fhir/auth/logout", headers=token)).status_code == 204
        deadline = time.monotonic() + 30
        while (await secure.client.get("/fhir/Patient", headers=token)).status_code != 401:
            assert time.monotonic() < deadline, "the other worker still accepts a revoked token"
            await asyncio.sleep(0.2)
        assert (await other.get("/fhir/Patient", headers=token)).status_code == 401


async def test_rfc7009_revocation_is_public_and_always_200(secure: Secure) -> None:
    await add_user(secure.security)
    token = (await sign_in(secure.client))["access_token"]
    assert (await secure.client.post("/fhir/auth/revoke", data={"token": "not-a-token"})).status_code == 200
    assert (await secure.client.post("/fhir/auth/revoke", data={"token": token})).status_code == 200
    assert (await secure.client.get("/fhir/Patient", headers=bearer(token))).status_code == 401


async def test_unknown_username_costs_what_a_wrong_password_costs(secure: Secure) -> None:
    """No enumeration by timing: an unknown name is checked against a dummy scrypt hash. Medians of several
    attempts (fresh names, so the lockout does not interfere), with a wide margin for a loaded machine."""
    wrong, unknown = [], []
    for i in range(5):
        await add_user(secure.security, f"t{i}")
        for name, into in ((f"t{i}", wrong), (f"nobody{i}", unknown)):
            started = time.perf_counter()
            r = await _attempt(secure.client, name, "wrong password")
            into.append(time.perf_counter() - started)
            assert "incorrect" in _alert(r)
    ratio = statistics.median(unknown) / statistics.median(wrong)
    assert 0.4 < ratio < 2.5, (wrong, unknown)


async def _audit_events(client: httpx.AsyncClient, headers: dict[str, str], **params: str) -> list[dict[str, Any]]:
    r = await client.get("/fhir/AuditEvent", params={"_count": "200", **params}, headers=headers)
    assert r.status_code == 200, r.text
    return [e["resource"] for e in r.json().get("entry", [])]


async def _eventually(check: Any, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = await check()
        if found:
            return found
        assert time.monotonic() < deadline
        await asyncio.sleep(0.2)


async def test_sign_ins_are_audited_without_passwords(secure: Secure) -> None:
    await add_user(secure.security, "ana", organization="Organization/cp1")
    await _attempt(secure.client, "ana", "Secret-Wrong-1")
    token = (await sign_in(secure.client, "ana"))["access_token"]
    assert (await secure.client.post("/fhir/auth/logout", headers=bearer(token))).status_code == 204
    admin = bearer(await secure.admin_token())

    async def logins() -> list[dict[str, Any]]:
        found = await _audit_events(secure.client, admin)
        out = [e for e in found if e["type"]["code"] == "110114"]
        return out if len(out) >= 3 else []

    events = await _eventually(logins)
    assert sorted((e["subtype"][0]["code"], e["outcome"]) for e in events) == [
        ("110122", "0"), ("110122", "4"), ("110123", "0")]
    for e in events:
        [person] = [a for a in e["agent"] if a["type"]["coding"][0]["code"] == "humanuser"]
        assert person["who"]["identifier"]["value"] == "ana" and person["requestor"] is True
    everything = json.dumps(await _audit_events(secure.client, admin))
    assert PASSWORD not in everything and "Secret-Wrong-1" not in everything


async def test_people_see_their_own_audit_events_only(secure: Secure) -> None:
    """Both use the page's one client id; the gate tells them apart by the person agent."""
    await add_user(secure.security, "ana", organization="Organization/cp1")
    await add_user(secure.security, "bea", organization="Organization/cp1")
    ana = bearer((await sign_in(secure.client, "ana"))["access_token"])
    bea = bearer((await sign_in(secure.client, "bea"))["access_token"])
    refused = await secure.client.post("/fhir/Organization", json={"resourceType": "Organization"}, headers=ana)
    assert refused.status_code == 403

    async def anas() -> list[dict[str, Any]]:
        return [e for e in await _audit_events(secure.client, ana) if e["outcome"] == "4"]

    [event] = await _eventually(anas)
    people = [a["who"]["identifier"]["value"] for a in event["agent"]
              if a["type"]["coding"][0]["code"] == "humanuser"]
    assert people == ["ana"]
    client = [a for a in event["agent"] if a["type"]["coding"][0]["code"] == "110153"][0]
    assert client["who"]["identifier"]["value"] == "ascmi-care-partner-app" and client["requestor"] is False
    assert [e for e in await _audit_events(secure.client, bea) if e["outcome"] == "4"] == []


async def test_people_do_not_share_export_jobs(secure: Secure) -> None:
    await add_user(secure.security, "ana", organization="Organization/cp1")
    await add_user(secure.security, "bea", organization="Organization/cp1")
    ana = bearer((await sign_in(secure.client, "ana"))["access_token"])
    bea = bearer((await sign_in(secure.client, "bea"))["access_token"])
    r = await secure.client.get("/fhir/Patient/$export", headers={**ana, "Prefer": "respond-async",
                                                                  "Accept": "application/fhir+json"})
    assert r.status_code == 202, r.text
    url = r.headers["content-location"]
    assert (await secure.client.get(url, headers=bea)).status_code == 404
    assert (await secure.client.get(url, headers=ana)).status_code in (200, 202)


async def test_people_do_not_share_subscriptions(secure: Secure) -> None:
    from tests.subscriptions.support import PATIENT_DATA_CHANGE, topic

    await add_user(secure.security, "ana", organization="Organization/cp1")
    await add_user(secure.security, "bea", organization="Organization/cp1")
    ana = bearer((await sign_in(secure.client, "ana"))["access_token"])
    bea = bearer((await sign_in(secure.client, "bea"))["access_token"])
    r = await secure.client.post("/fhir/Subscription", headers=ana, json=topic(
        PATIENT_DATA_CHANGE, "http://127.0.0.1:9/hook", filters=["Observation?patient=Patient/x"]))
    assert r.status_code == 201, r.text
    sid = r.json()["id"]
    assert (await secure.client.get(f"/fhir/Subscription/{sid}/$status", headers=bea)).status_code == 404
    assert (await secure.client.get(f"/fhir/Subscription/{sid}/$status", headers=ana)).status_code == 200


def test_every_login_page_string_exists_in_every_language() -> None:
    catalogue = login_page.catalogue()
    assert set(catalogue) == set(login_page.LANGUAGES)
    keys = set(catalogue["en"])
    for lang, messages in catalogue.items():
        assert set(messages) == keys, lang
        assert all(isinstance(v, str) and v.strip() for v in messages.values()), lang
        if lang != "en":  # translated, not copied
            assert sum(messages[k] == catalogue["en"][k] for k in keys) <= 1, lang


async def test_a_disabled_persons_subscriptions_stop_delivering(secure: Secure) -> None:
    from dataclasses import replace

    from tests.subscriptions.support import classic, receiver

    await add_user(secure.security, "root", organization=None)
    root = bearer((await sign_in(secure.client, "root"))["access_token"])
    admin = bearer(await secure.admin_token())
    async with receiver() as hook:
        r = await secure.client.post("/fhir/Subscription", headers=root,
                                     json=classic("Patient?family=Tran", hook.url, payload="application/fhir+json"))
        assert r.status_code == 201, r.text
        patient = {"resourceType": "Patient", "name": [{"family": "Tran"}]}
        assert (await secure.client.post("/fhir/Patient", json=patient, headers=admin)).status_code == 201
        await hook.wait_for(1, timeout=30)
        user = await secure.security.user("root", fresh=True)
        assert user is not None
        await secure.security.replace_user(replace(user, active=False))
        await asyncio.sleep(2.5)  # past the owner re-check period (1 s)
        before = len(hook.requests)
        assert (await secure.client.post("/fhir/Patient", json=patient, headers=admin)).status_code == 201
        await asyncio.sleep(3)
        assert len(hook.requests) == before


async def test_each_person_has_their_own_export_quota(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    """FHIR_EXPORT_MAX_JOBS_PER_CLIENT counts per person for the web page, not for everyone who uses it."""
    settings = Settings(data_dir=tmp_path, load_conformance=False, auth="smart", export_workers=0,
                        export_max_jobs_per_client=1)
    app = create_app(settings, make_store(STORE, tmp_path, request))
    kick = {"Prefer": "respond-async", "Accept": "application/fhir+json"}
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as c:
            await add_user(app.state.security, "ana")
            await add_user(app.state.security, "bea")
            ana = bearer((await sign_in(c, "ana"))["access_token"])
            bea = bearer((await sign_in(c, "bea"))["access_token"])
            assert (await c.get("/fhir/Patient/$export", headers={**ana, **kick})).status_code == 202
            assert (await c.get("/fhir/Patient/$export", headers={**bea, **kick})).status_code == 202
            r = await c.get("/fhir/Patient/$export", headers={**ana, **kick})
            assert r.status_code == 429 and r.json()["issue"][0]["code"] == "throttled"
