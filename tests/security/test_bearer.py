"""Bearer tokens on every request (ACCESS.md §A): 401 ``login`` and 403 ``forbidden`` shapes, the public
endpoints, v1 and v2 scopes checked per type and interaction before any lookup, and disabling a client."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import jwt
import pytest

from fhir_server.security.service import TOKEN_ISSUER
from tests.security.conftest import Key, Secure, bearer, claims

CDS = "/cds-services/patient-consent-consult"


def _assert_401(r: httpx.Response) -> None:
    assert r.status_code == 401, r.text
    assert r.headers["www-authenticate"].startswith("Bearer")
    outcome = r.json()
    assert outcome["resourceType"] == "OperationOutcome" and outcome["issue"][0]["code"] == "login"


def _assert_403(r: httpx.Response) -> None:
    assert r.status_code == 403, r.text
    outcome = r.json()
    assert outcome["resourceType"] == "OperationOutcome" and outcome["issue"][0]["code"] == "forbidden"


@pytest.mark.parametrize("path", ["/fhir/metadata", "/fhir/.well-known/smart-configuration", "/health",
                                  "/cds-services"])
async def test_public_endpoints_need_no_token(secure: Secure, path: str) -> None:
    assert (await secure.client.get(path)).status_code == 200


@pytest.mark.parametrize(("method", "path"), [
    ("GET", "/fhir/Patient"), ("GET", "/fhir/Patient/1"), ("POST", "/fhir/Patient"), ("POST", "/fhir"),
    ("GET", "/fhir/_history"), ("POST", "/fhir/Consent/$decide"), ("POST", "/ascmi/forms"), ("POST", CDS),
    ("GET", "/admin/clients"), ("GET", "/fhir/no-such-thing/at/all"), ("DELETE", "/fhir/metadata"),
])
async def test_every_other_request_needs_a_token(secure: Secure, method: str, path: str) -> None:
    _assert_401(await secure.client.request(method, path))


@pytest.mark.parametrize("header", ["Bearer", "Bearer ", "Basic dXNlcjpwdw==", "Bearer not.a.token", "token abc"])
async def test_malformed_authorization_is_401(secure: Secure, header: str) -> None:
    _assert_401(await secure.client.get("/fhir/Patient", headers={"Authorization": header}))


async def test_expired_token_is_401(secure: Secure) -> None:
    client, _ = await secure.register()
    token = await secure.security.mint(client.client_id, {"*": "cruds"}, None, lifetime=-61)
    _assert_401(await secure.client.get("/fhir/Patient", headers=bearer(token)))


async def test_token_expired_within_the_skew_still_works(secure: Secure) -> None:
    client, _ = await secure.register()
    token = await secure.security.mint(client.client_id, {"*": "cruds"}, None, lifetime=-30)
    assert (await secure.client.get("/fhir/Patient", headers=bearer(token))).status_code == 200


async def test_token_signed_with_another_key_is_401(secure: Secure) -> None:
    client, _ = await secure.register()
    now = int(time.time())
    forged = jwt.encode({"iss": TOKEN_ISSUER, "sub": client.client_id, "exp": now + 300, "iat": now,
                         "scope": "system/*.cruds"}, b"x" * 32, algorithm="HS256")
    _assert_401(await secure.client.get("/fhir/Patient", headers=bearer(forged)))


async def test_a_client_assertion_is_not_an_access_token(secure: Secure) -> None:
    client, key = await secure.register()
    _assert_401(await secure.client.get("/fhir/Patient", headers=bearer(key.sign(claims(client.client_id)))))


@pytest.mark.parametrize(("scopes", "method", "path", "body"), [
    (("system/Patient.rs",), "GET", "/fhir/Observation/does-not-exist", None),
    (("system/Patient.rs",), "GET", "/fhir/Observation", None),
    (("system/Patient.r",), "GET", "/fhir/Patient", None),
    (("system/Patient.s",), "GET", "/fhir/Patient/does-not-exist", None),
    (("system/Patient.rs",), "POST", "/fhir/Patient", {"resourceType": "Patient"}),
    (("system/Patient.rs",), "PUT", "/fhir/Patient/p1", {"resourceType": "Patient", "id": "p1"}),
    (("system/Patient.rs",), "DELETE", "/fhir/Patient/p1", None),
    (("system/Patient.rs",), "GET", "/fhir/Observation/x/_history", None),
    (("system/Patient.rs",), "GET", "/fhir/_history", None),
    (("system/Patient.rs",), "GET", "/fhir?_type=Patient,Observation", None),
    (("system/Patient.rs",), "POST", "/fhir/Consent/$decide", {"resourceType": "Parameters"}),
    (("system/Consent.r",), "POST", "/fhir/Consent/$fileConsent", {"resourceType": "Parameters"}),
    (("system/Patient.rs",), "POST", "/ascmi/forms", {}),
    (("system/Patient.rs",), "POST", "/fhir/ValueSet/$expand", {"resourceType": "Parameters"}),
    (("system/Patient.rs",), "GET", "/admin/clients", None),
], ids=lambda v: v if isinstance(v, str) else None)
async def test_missing_scope_is_403_before_any_lookup(secure: Secure, scopes: tuple[str, ...], method: str,
                                                      path: str, body: Any) -> None:
    _, token = await secure.partner(scopes)
    _assert_403(await secure.client.request(method, path, headers=bearer(token), json=body))


async def test_head_needs_what_get_needs(secure: Secure) -> None:
    _, token = await secure.partner(("system/Patient.rs",))
    assert (await secure.client.head("/fhir/Observation/x", headers=bearer(token))).status_code == 403
    assert (await secure.client.head("/fhir/Observation", headers=bearer(token))).status_code == 403
    assert (await secure.client.head("/fhir/Observation/x")).status_code == 401


async def test_v2_and_v1_scopes_grant_the_same_letters(secure: Secure) -> None:
    for scope in ("system/Patient.rs", "system/Patient.read"):
        _, token = await secure.partner((scope,))
        h = bearer(token)
        assert (await secure.client.get("/fhir/Patient", headers=h)).status_code == 200
        assert (await secure.client.get("/fhir/Patient/nobody", headers=h)).status_code == 404
        _assert_403(await secure.client.post("/fhir/Patient", headers=h, json={"resourceType": "Patient"}))
    _, token = await secure.partner(("system/Patient.write", "system/Patient.read"))
    r = await secure.client.post("/fhir/Patient", headers=bearer(token), json={"resourceType": "Patient"})
    assert r.status_code == 201
    pid = r.json()["id"]
    # allowed by scope; the consent gate may still withhold the Patient (404) from a Care Partner outside the network
    assert (await secure.client.delete(f"/fhir/Patient/{pid}", headers=bearer(token))).status_code in (200, 204, 404)


async def test_system_search_needs_search_on_each_type(secure: Secure) -> None:
    _, token = await secure.partner(("system/Patient.rs", "system/Observation.s"))
    r = await secure.client.get("/fhir?_type=Patient,Observation", headers=bearer(token))
    assert r.status_code == 200, r.text
    _assert_403(await secure.client.get("/fhir", headers=bearer(token)))  # every type


def _transaction(*entries: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": "transaction", "entry": list(entries)}


async def test_each_bundle_entry_is_checked_and_nothing_is_written(secure: Secure) -> None:
    _, token = await secure.partner(("system/Patient.cruds", "system/Observation.rs"))
    bundle = _transaction(
        {"fullUrl": "urn:uuid:a", "resource": {"resourceType": "Patient"}, "request": {"method": "POST",
                                                                                      "url": "Patient"}},
        {"resource": {"resourceType": "Observation", "status": "final", "code": {"text": "x"}},
         "request": {"method": "POST", "url": "Observation"}},
    )
    _assert_403(await secure.client.post("/fhir", headers=bearer(token), json=bundle))
    batch = {**bundle, "type": "batch"}
    _assert_403(await secure.client.post("/fhir", headers=bearer(token), json=batch))
    r = await secure.client.get("/fhir/Patient", headers=bearer(token))
    assert r.json().get("total", 0) == 0 and not r.json().get("entry")
    ok = _transaction(bundle["entry"][0], {"request": {"method": "GET", "url": "Observation?code=x"}})
    await secure.app.state.server.audit.flush()  # SecantusDB can report a write conflict with a concurrent batch
    r = await secure.client.post("/fhir", headers=bearer(token), json=ok)
    assert r.status_code == 200, r.text


async def test_disabling_a_client_kills_its_live_tokens_at_once(secure: Secure) -> None:
    admin = await secure.admin_token()
    client, token = await secure.partner(("system/Patient.rs",))
    assert (await secure.client.get("/fhir/Patient", headers=bearer(token))).status_code == 200
    r = await secure.client.post(f"/admin/clients/{client.client_id}/disable", headers=bearer(admin))
    assert r.status_code == 200 and r.json()["active"] is False
    _assert_401(await secure.client.get("/fhir/Patient", headers=bearer(token)))
    r = await secure.client.post(f"/admin/clients/{client.client_id}/enable", headers=bearer(admin))
    assert (await secure.client.get("/fhir/Patient", headers=bearer(token))).status_code == 200


async def test_disabling_in_another_worker_takes_effect_within_the_cache_time(secure: Secure) -> None:
    client, token = await secure.partner(("system/Patient.rs",))
    assert (await secure.client.get("/fhir/Patient", headers=bearer(token))).status_code == 200
    await secure.security.registry.set_client_active(client.client_id, False)  # as the CLI or a worker would
    await asyncio.sleep(secure.security.client_cache_seconds + 0.1)
    _assert_401(await secure.client.get("/fhir/Patient", headers=bearer(token)))


async def test_admin_api_registers_lists_and_refuses_care_partners(secure: Secure) -> None:
    admin = await secure.admin_token()
    key = Key.make("ES384")
    body = {"jwks": key.jwks(), "organization": "Organization/cp9", "scopes": ["system/Patient.rs"],
            "purposes": ["TREAT"]}
    r = await secure.client.post("/admin/clients", headers=bearer(admin), json=body)
    assert r.status_code == 201, r.text
    made = r.json()
    assert made["organization"] == "Organization/cp9" and made["active"] is True
    listed = (await secure.client.get("/admin/clients", headers=bearer(admin))).json()
    assert made["client_id"] in {c["client_id"] for c in listed}
    bad = await secure.client.post("/admin/clients", headers=bearer(admin),
                                   json={**body, "jwks": Key.make("RS384", 1024).jwks()})
    assert bad.status_code == 400 and "2048" in bad.json()["issue"][0]["diagnostics"]
    _, partner = await secure.partner()
    _assert_403(await secure.client.get("/admin/clients", headers=bearer(partner)))


async def test_cds_hooks_client_jwt_is_accepted_once(secure: Secure) -> None:
    client, key = await secure.register(organization="Organization/cp1", scopes=("system/Consent.r",),
                                        purposes=("TREAT",))
    jwt_ = key.sign(claims(client.client_id, aud=f"http://test{CDS}", sub=None))
    body = {"hook": "patient-view", "context": {}}
    r = await secure.client.post(CDS, headers=bearer(jwt_), json=body)
    assert r.status_code == 400, r.text  # authenticated: the (deliberately wrong) hook is what fails
    _assert_401(await secure.client.post(CDS, headers=bearer(jwt_), json=body))  # jti replayed
    wrong_aud = key.sign(claims(client.client_id, aud="http://test/fhir/auth/token"))
    _assert_401(await secure.client.post(CDS, headers=bearer(wrong_aud), json=body))
    hs = jwt.encode(claims(client.client_id, aud=f"http://test{CDS}"), b"k" * 32, algorithm="HS256")
    _assert_401(await secure.client.post(CDS, headers=bearer(hs), json=body))


async def test_cds_hooks_needs_consent_read(secure: Secure) -> None:
    client, key = await secure.register(organization="Organization/cp1", scopes=("system/Patient.rs",),
                                        purposes=("TREAT",))
    jwt_ = key.sign(claims(client.client_id, aud=f"http://test{CDS}"))
    _assert_403(await secure.client.post(CDS, headers=bearer(jwt_), json={}))
    _, token = await secure.partner(("system/Consent.r",))
    r = await secure.client.post(CDS, headers=bearer(token), json={"hook": "patient-view"})
    assert r.status_code == 400  # a server token works too
