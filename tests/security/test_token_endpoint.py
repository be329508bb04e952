"""The token endpoint (ACCESS.md §A): RFC 6749 §4.4 + RFC 7523 with real RSA and EC keys, every refusal."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

import jwt
import pytest

from tests.security.conftest import BASE, TOKEN_URL, Key, Secure, bearer, claims, form

INVALID_CLIENT = {"error": "invalid_client", "error_description": "client authentication failed"}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unsigned(header: dict[str, Any], body: dict[str, Any], signature: bytes = b"") -> str:
    head = _b64(json.dumps(header).encode()) + "." + _b64(json.dumps(body).encode())
    return head + "." + _b64(signature)


@pytest.mark.parametrize("alg", ["RS384", "ES384"])
async def test_a_registered_client_gets_a_bearer_token(secure: Secure, alg: str) -> None:
    client, key = await secure.register(Key.make(alg))
    r = await secure.token_response(client, key, "system/Patient.rs")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["token_type"] == "bearer" and body["expires_in"] == 300 and body["scope"] == "system/Patient.rs"
    assert r.headers["cache-control"] == "no-store"
    read = await secure.client.get("/fhir/Patient", headers=bearer(body["access_token"]))
    assert read.status_code == 200


async def _refused(secure: Secure, assertion: str) -> None:
    r = await secure.client.post("/fhir/auth/token", data=form(assertion))
    assert r.status_code == 401, r.text
    assert r.json() == INVALID_CLIENT  # never says which check failed


async def test_rs256_is_refused_though_the_key_is_right(secure: Secure) -> None:
    client, key = await secure.register()
    await _refused(secure, key.sign(claims(client.client_id), alg="RS256"))


async def test_alg_none_is_refused(secure: Secure) -> None:
    client, key = await secure.register()
    await _refused(secure, _unsigned({"alg": "none", "kid": key.kid}, claims(client.client_id)))


async def test_hs256_with_the_public_key_as_secret_is_refused(secure: Secure) -> None:
    client, key = await secure.register()
    from cryptography.hazmat.primitives import serialization

    pem = key.private.public_key().public_bytes(serialization.Encoding.PEM,
                                                serialization.PublicFormat.SubjectPublicKeyInfo)
    header = {"alg": "HS256", "kid": key.kid, "typ": "JWT"}
    unsigned = _unsigned(header, claims(client.client_id)).rsplit(".", 1)[0]
    signature = hmac.new(pem, unsigned.encode(), hashlib.sha256).digest()
    await _refused(secure, unsigned + "." + _b64(signature))


async def test_unknown_kid_is_refused(secure: Secure) -> None:
    client, key = await secure.register()
    await _refused(secure, key.sign(claims(client.client_id), kid="someone-else"))


async def test_a_key_of_another_client_is_refused(secure: Secure) -> None:
    client, _ = await secure.register()
    _, other = await secure.register()
    await _refused(secure, other.sign(claims(client.client_id)))


async def test_a_tampered_signature_is_refused(secure: Secure) -> None:
    client, key = await secure.register()
    token = key.sign(claims(client.client_id))
    head, body, sig = token.split(".")
    await _refused(secure, f"{head}.{body}.{sig[:-4]}AAAA")


@pytest.mark.parametrize("change", [
    {"aud": "http://test/fhir"},
    {"aud": "https://elsewhere.example/token"},
    {"sub": "someone-else"},
    {"sub": None},
    {"exp": -120},  # seconds from now, computed when the test runs (collection may be minutes earlier)
    {"exp": 600},
    {"exp": None},
    {"jti": None},
], ids=["aud-is-base", "aud-elsewhere", "iss-not-sub", "no-sub", "expired", "exp-too-far", "no-exp", "no-jti"])
async def test_claim_refusals(secure: Secure, change: dict[str, Any]) -> None:
    client, key = await secure.register()
    if change.get("exp") is not None:
        change = {**change, "exp": int(time.time()) + change["exp"]}
    await _refused(secure, key.sign(claims(client.client_id, **change)))


async def test_expiry_within_the_clock_skew_is_accepted(secure: Secure) -> None:
    client, key = await secure.register()
    r = await secure.token_response(client, key, exp=int(time.time()) - 30)
    assert r.status_code == 200, r.text


async def test_a_replayed_jti_is_refused(secure: Secure) -> None:
    client, key = await secure.register()
    assertion = key.sign(claims(client.client_id))
    first = await secure.client.post("/fhir/auth/token", data=form(assertion))
    assert first.status_code == 200
    await _refused(secure, assertion)
    again = key.sign(claims(client.client_id, jti=jwt.decode(assertion, options={"verify_signature": False})["jti"]))
    await _refused(secure, again)


async def test_unknown_client_is_refused(secure: Secure) -> None:
    key = Key.make()
    await _refused(secure, key.sign(claims("nobody-registered-this")))


async def test_disabled_client_is_refused(secure: Secure) -> None:
    client, key = await secure.register()
    await secure.security.set_active(client.client_id, False)
    await _refused(secure, key.sign(claims(client.client_id)))


async def test_garbage_assertion_is_refused(secure: Secure) -> None:
    await _refused(secure, "not-a-jwt")


async def test_other_grant_type_is_unsupported(secure: Secure) -> None:
    client, key = await secure.register()
    r = await secure.client.post("/fhir/auth/token", data=form(key.sign(claims(client.client_id)),
                                                                  grant_type="password"))
    assert r.status_code == 400 and r.json()["error"] == "unsupported_grant_type"


async def test_missing_assertion_type_is_invalid_request(secure: Secure) -> None:
    client, key = await secure.register()
    data = form(key.sign(claims(client.client_id)))
    del data["client_assertion_type"]
    r = await secure.client.post("/fhir/auth/token", data=data)
    assert r.status_code == 400 and r.json()["error"] == "invalid_request"


async def test_json_body_is_invalid_request(secure: Secure) -> None:
    r = await secure.client.post("/fhir/auth/token", json={"grant_type": "client_credentials"})
    assert r.status_code == 400 and r.json()["error"] == "invalid_request"


# --- scopes ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("allowed", "requested", "granted"), [
    (("system/Patient.rs",), "system/*.rs", "system/Patient.rs"),
    (("system/*.cruds",), "system/Observation.read", "system/Observation.rs"),
    (("system/*.read",), "system/Patient.cruds", "system/Patient.rs"),
    (("system/Patient.rs", "system/Consent.c"), "system/*.cruds", "system/Consent.c system/Patient.rs"),
    (("system/*.write",), "system/Consent.cruds system/Patient.c", "system/Consent.cud system/Patient.c"),
    (("system/*.*",), "system/*.rs", "system/*.rs"),
])
async def test_granted_is_requested_intersect_allowed(secure: Secure, allowed: tuple[str, ...], requested: str,
                                                      granted: str) -> None:
    client, key = await secure.register(organization="Organization/o1", scopes=allowed, purposes=("TREAT",))
    r = await secure.token_response(client, key, requested)
    assert r.status_code == 200, r.text
    assert r.json()["scope"] == granted


@pytest.mark.parametrize("requested", ["system/Observation.rs", "patient/*.read", "", "system/Patient.x"])
async def test_no_granted_scope_is_invalid_scope(secure: Secure, requested: str) -> None:
    client, key = await secure.register(organization="Organization/o1", scopes=("system/Patient.rs",),
                                        purposes=("TREAT",))
    r = await secure.token_response(client, key, requested)
    assert r.status_code == 400 and r.json()["error"] == "invalid_scope"


# --- purpose of use (HL7 B2B) ---------------------------------------------------------------------------------


def _b2b(*codes: Any) -> dict[str, Any]:
    return {"hl7-b2b": {"version": "1", "purpose_of_use": list(codes)}}


def _purpose(token: str) -> Any:
    return jwt.decode(token, options={"verify_signature": False}).get("purpose")


@pytest.mark.parametrize("stated", ["TREAT", "urn:oid:2.16.840.1.113883.5.8#TREAT",
                                    "http://terminology.hl7.org/CodeSystem/v3-ActReason#TREAT"])
async def test_a_stated_allowed_purpose_is_granted(secure: Secure, stated: str) -> None:
    client, key = await secure.register(organization="Organization/o1", scopes=("system/*.rs",),
                                        purposes=("TREAT", "COC"))
    token = await secure.token(client, key, "system/*.rs", extensions=_b2b(stated))
    assert _purpose(token) == "TREAT"


async def test_absent_purpose_is_the_only_allowed_one(secure: Secure) -> None:
    client, key = await secure.register(organization="Organization/o1", scopes=("system/*.rs",),
                                        purposes=("CAREMGT",))
    assert _purpose(await secure.token(client, key, "system/*.rs")) == "CAREMGT"


@pytest.mark.parametrize(("allowed", "extensions"), [
    (("TREAT", "COC"), None),
    (("TREAT",), _b2b("HPAYMT")),
    (("TREAT",), _b2b("ETREAT")),
    (("TREAT", "COC"), _b2b("TREAT", "COC")),
    (("TREAT",), {"hl7-b2b": "TREAT"}),
], ids=["absent-two-allowed", "not-allowed", "unknown", "two-stated", "malformed"])
async def test_purpose_refusals_are_invalid_request(secure: Secure, allowed: tuple[str, ...],
                                                    extensions: Any) -> None:
    client, key = await secure.register(organization="Organization/o1", scopes=("system/*.rs",), purposes=allowed)
    r = await secure.token_response(client, key, "system/*.rs", extensions=extensions)
    assert r.status_code == 400 and r.json()["error"] == "invalid_request", r.text


async def test_an_administrator_needs_no_purpose(secure: Secure) -> None:
    client, key = await secure.register()
    assert _purpose(await secure.token(client, key)) is None


# --- throttling -----------------------------------------------------------------------------------------------


async def test_ten_failures_in_a_minute_answer_429_for_that_client_only(secure: Secure) -> None:
    client, key = await secure.register()
    other, other_key = await secure.register()
    for _ in range(10):
        await _refused(secure, key.sign(claims(client.client_id, aud="https://wrong.example")))
    r = await secure.token_response(client, key)  # even a good assertion
    assert r.status_code == 429
    assert 1 <= int(r.headers["retry-after"]) <= 60
    assert r.json()["error"] == "invalid_client"
    assert (await secure.token_response(other, other_key)).status_code == 200


async def test_discovery_document(secure: Secure) -> None:
    r = await secure.client.get("/fhir/.well-known/smart-configuration")
    assert r.status_code == 200
    doc = r.json()
    assert doc["token_endpoint"] == TOKEN_URL
    assert doc["grant_types_supported"] == ["client_credentials", "authorization_code"]  # + the web page (#19)
    assert doc["token_endpoint_auth_methods_supported"] == ["private_key_jwt"]
    assert doc["token_endpoint_auth_signing_alg_values_supported"] == ["RS384", "ES384"]
    assert {"client-confidential-asymmetric", "permission-v1", "permission-v2"} <= set(doc["capabilities"])
    assert doc["scopes_supported"]


async def test_capability_statement_names_smart_and_the_token_endpoint(secure: Secure) -> None:
    r = await secure.client.get("/fhir/metadata")
    security = r.json()["rest"][0]["security"]
    assert security["service"][0]["coding"][0] == {
        "system": "http://terminology.hl7.org/CodeSystem/restful-security-service", "code": "SMART-on-FHIR",
        "display": "SMART-on-FHIR"}
    [uris] = [e for e in security["extension"]
              if e["url"] == "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris"]
    assert uris["extension"][0] == {"url": "token", "valueUri": TOKEN_URL}
    assert {"url": "authorize", "valueUri": f"{BASE}/auth/authorize"} in uris["extension"]  # the web page (#19)


async def test_a_jti_used_on_one_worker_is_refused_on_another(secure: Secure, secure_settings: Any,
                                                              tmp_path: Any, request: pytest.FixtureRequest) -> None:
    """Two apps on one store (as two server workers or replicas are): the replay check is the store's."""
    import httpx

    from fhir_server.app import create_app
    from tests.conftest import STORE, make_store

    client, key = await secure.register()
    assertion = key.sign(claims(client.client_id))
    other = create_app(secure_settings, make_store(STORE, tmp_path, request))
    async with other.router.lifespan_context(other):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=other), base_url="http://test") as c2:
            first = await c2.post("/fhir/auth/token", data=form(assertion))
            assert first.status_code == 200, first.text
            token = first.json()["access_token"]
            await _refused(secure, assertion)
            # and a token from one worker works on the other (one key in the store)
            assert (await secure.client.get("/fhir/Patient", headers=bearer(token))).status_code == 200
