"""SMART Backend Services over HTTP (ACCESS.md §A): the discovery document, the token endpoint and the
administrators' client API.

- ``GET  /fhir/.well-known/smart-configuration`` (public)
- ``POST /fhir/auth/token`` (public; RFC 6749 §4.4 with an RFC 7523 ``client_assertion``; RFC 6749 §5.2 errors)
- ``GET|POST /admin/clients``, ``GET /admin/clients/{id}``, ``POST /admin/clients/{id}/disable|enable``
  (administrator clients only; the same registry as ``fhir-server clients``)
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, FastAPI
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from fhir_server.api import context
from fhir_server.api.negotiation import read_body, read_json, string_list
from fhir_server.api.responses import json_response
from fhir_server.fhir.outcome import BadRequest, NotFound
from fhir_server.security import assertion
from fhir_server.security.audit import OUTCOME_REFUSED, balp_event
from fhir_server.security.clients import ALGORITHMS, ClientError, new_client
from fhir_server.security.errors import TokenError
from fhir_server.security.service import TOKEN_PATH, Security
from fhir_server.security.signin import AUTHORIZE_PATH, REVOKE_PATH, SignIn
from fhir_server.settings import Settings
from fhir_server.store.base import Store

CAPABILITIES = ["client-confidential-asymmetric", "permission-v1", "permission-v2", "launch-standalone",
                "client-public"]
SCOPES_SUPPORTED = ["system/*.cruds", "system/*.rs", "system/*.read", "system/*.write", "system/*.*",
                    "system/Consent.r", "system/Consent.c", "system/Patient.rs",
                    "user/*.cruds", "user/*.rs", "user/*.read", "user/*.write", "user/*.*"]
log = logging.getLogger("fhir_server.security")
_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
_MAX_FORM = 64 * 1024


def security(request: Request) -> Security:
    return request.app.state.security  # type: ignore[no-any-return]


def token_url(request: Request) -> str:
    return context.base_url(request) + TOKEN_PATH


def smart_configuration_document(base: str) -> dict[str, Any]:
    return {
        "issuer": base,
        "token_endpoint": base + TOKEN_PATH,
        "authorization_endpoint": base + AUTHORIZE_PATH,
        "revocation_endpoint": base + REVOKE_PATH,
        "grant_types_supported": ["client_credentials", "authorization_code"],
        "code_challenge_methods_supported": ["S256"],
        "response_types_supported": ["code"],
        "token_endpoint_auth_methods_supported": ["private_key_jwt"],
        "token_endpoint_auth_signing_alg_values_supported": list(ALGORITHMS),
        "scopes_supported": SCOPES_SUPPORTED,
        "capabilities": CAPABILITIES,
    }


OAUTH_URIS = "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris"
SECURITY_SERVICE = "http://terminology.hl7.org/CodeSystem/restful-security-service"


def extend_capability(statement: dict[str, Any], base: str, settings: Settings) -> None:
    """``rest.security``: SMART-on-FHIR with the ``oauth-uris`` extension naming the token endpoint."""
    rest = statement["rest"][0]
    if settings.auth == "off":
        rest["security"] = {"description": "FHIR_AUTH=off: no authentication; every request acts as an "
                                           "administrator (a development setting)"}
        return
    rest["security"] = {
        "extension": [{"url": OAUTH_URIS, "extension": [{"url": "token", "valueUri": base + TOKEN_PATH},
                                                        {"url": "authorize", "valueUri": base + AUTHORIZE_PATH},
                                                        {"url": "revoke", "valueUri": base + REVOKE_PATH}]}],
        "service": [{"coding": [{"system": SECURITY_SERVICE, "code": "SMART-on-FHIR", "display": "SMART-on-FHIR"}],
                     "text": "SMART Backend Services (client_credentials with a private_key_jwt assertion) "
                             "and SMART App Launch standalone (authorization code + PKCE) for the web page"}],
        "description": "Every request but metadata, the SMART configuration and the token endpoint needs "
                       "'Authorization: Bearer <token>'; see /fhir/.well-known/smart-configuration.",
    }


async def smart_configuration(request: Request) -> Response:
    return JSONResponse(smart_configuration_document(context.base_url(request)))


async def token(request: Request) -> Response:
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    form: dict[str, str] = {}
    try:
        if ctype != "application/x-www-form-urlencoded":
            raise TokenError("invalid_request", "send the token request as application/x-www-form-urlencoded")
        body = await read_body(request, _MAX_FORM)
        for key, value in parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True):
            if key in form:
                raise TokenError("invalid_request", f"parameter {key} is repeated")
            form[key] = value
        if form.get("grant_type") == "authorization_code":
            answer = await request.app.state.signin.exchange(form)
        else:
            answer = await security(request).issue(form, token_url(request))
    except TokenError as exc:
        if exc.status in (401, 429):
            _audit_refused_token(request, form.get("client_assertion", ""), exc)
        return JSONResponse(exc.body(), exc.status, {**_NO_STORE, **exc.headers})
    return JSONResponse(answer, 200, _NO_STORE)


def _audit_refused_token(request: Request, assertion_text: str, exc: TokenError) -> None:
    """A refused token request is a refused request too (BALP, outcome 4); the client id it claimed is
    unverified, so it goes in the description, not in the agent."""
    srv = context.server(request)
    if srv.audit is None:
        return
    claimed = assertion.claimed_client(assertion_text) if assertion_text else None
    event = balp_event(None, interaction="operation", outcome=OUTCOME_REFUSED, patients=(),
                       query=f"POST {request.url.path}", base_url=context.base_url(request),
                       description=f"token request refused ({exc.error}, HTTP {exc.status}); claimed client_id: "
                                   f"{claimed or 'none readable'}", canonical_base=srv.settings.canonical_base)
    srv.audit.submit(event)


# --- the administrators' client API -------------------------------------------------------------------------


async def list_clients(request: Request) -> Response:
    docs = await security(request).registry.list_clients()
    return json_response(docs, 200)


async def add_client(request: Request) -> Response:
    body = await read_json(request, 1024 * 1024, {"application/json", "application/fhir+json", ""})
    if not isinstance(body, dict):
        raise BadRequest('send {"jwks": {...}, "organization": "Organization/1", "scopes": [...], "purposes": [...]}')
    sec = security(request)
    try:
        client = new_client(body.get("jwks"), organization=body.get("organization"),
                            scope_list=string_list(body, "scopes"), purposes=string_list(body, "purposes"),
                            known_purposes=sec.purposes)
    except ClientError as exc:
        raise BadRequest(str(exc)) from None
    await sec.add_client(client)
    return json_response(client.to_json(), 201, {"Location": f"/admin/clients/{client.client_id}"})


async def read_client(request: Request, client_id: str) -> Response:
    doc = await security(request).registry.get_client(client_id)
    if doc is None:
        raise NotFound(f"no client {client_id!r}")
    return json_response(doc, 200)


async def _set_active(request: Request, client_id: str, active: bool) -> Response:
    sec = security(request)
    if not await sec.set_active(client_id, active):
        raise NotFound(f"no client {client_id!r}")
    return await read_client(request, client_id)


async def disable_client(request: Request, client_id: str) -> Response:
    return await _set_active(request, client_id, False)


async def enable_client(request: Request, client_id: str) -> Response:
    return await _set_active(request, client_id, True)


def router() -> APIRouter:
    r = APIRouter()
    r.add_api_route("/fhir/.well-known/smart-configuration", smart_configuration, methods=["GET"])
    r.add_api_route("/fhir" + TOKEN_PATH, token, methods=["POST"])
    r.add_api_route("/admin/clients", list_clients, methods=["GET"])
    r.add_api_route("/admin/clients", add_client, methods=["POST"])
    r.add_api_route("/admin/clients/{client_id}", read_client, methods=["GET"])
    r.add_api_route("/admin/clients/{client_id}/disable", disable_client, methods=["POST"])
    r.add_api_route("/admin/clients/{client_id}/enable", enable_client, methods=["POST"])
    return r


def install(app: FastAPI, settings: Settings, store: Store) -> Security:
    """Wire the security service, its routes and (unless ``FHIR_AUTH=off``) the authentication edge."""
    from fhir_server.api.authentication import Authentication
    from fhir_server.ascmi.terminology import load_terminology

    if settings.auth not in ("smart", "off"):
        raise ValueError(f"FHIR_AUTH must be 'smart' or 'off', not {settings.auth!r}")
    sec = Security(store, token_lifetime=settings.token_lifetime,
                   client_cache_seconds=settings.client_cache_seconds,
                   purposes=frozenset(load_terminology(settings.canonical_base).purposes))
    app.state.security = sec
    app.state.signin = SignIn(sec, token_lifetime=settings.user_token_lifetime)
    app.include_router(router())
    from fhir_server.api import signin as signin_api
    from fhir_server.api import users as users_api

    app.include_router(signin_api.router())
    app.include_router(users_api.router())
    if settings.auth == "off":
        log.warning("FHIR_AUTH=off: every request acts as an administrator; never expose this server")
    else:
        app.add_middleware(Authentication, security=sec)
    return sec
