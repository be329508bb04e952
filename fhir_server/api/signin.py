"""Sign-in for people over HTTP (issue #19; the logic is :mod:`fhir_server.security.signin`):

- ``GET  /fhir/auth/authorize`` — check the SMART standalone-launch request, show the login form (HTML, in the
  person's language); an unknown client or redirect URI gets an error page, other errors go back to the page as
  ``error=…&state=…`` (RFC 6749 §4.1.2.1);
- ``POST /fhir/auth/authorize`` — the form: CSRF token, username, password → ``302`` to the page with
  ``code`` and ``state``; a failure shows the form again with one message whatever failed;
- ``POST /fhir/auth/logout`` — revoke the bearer token of the request (sign-out), ``204``;
- ``POST /fhir/auth/revoke`` — RFC 7009 token revocation (form ``token=…``), always ``200``.

Every sign-in, successful or not, is audited (DICOM "User Authentication" AuditEvent, never with the password).
"""

from __future__ import annotations

import logging
import secrets
from urllib.parse import parse_qsl

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from fhir_server.api import context
from fhir_server.api.negotiation import read_body
from fhir_server.fhir.outcome import FHIRError
from fhir_server.security import login_page
from fhir_server.security.audit import login_event
from fhir_server.security.errors import Unauthorized
from fhir_server.security.signin import (
    AUTHORIZE_PATH,
    CSRF_COOKIE,
    LOGOUT_PATH,
    PUBLIC_CLIENT_ID,
    REVOKE_PATH,
    AuthorizeRequest,
    LoginRefused,
    PageError,
    RedirectError,
    SignIn,
    allowed_redirects,
    check_request,
    origin,
)
from fhir_server.security.users import User, normalise_username

log = logging.getLogger("fhir_server.security")
_MAX_FORM = 64 * 1024
_PAGE_HEADERS = {"Cache-Control": "no-store", "Pragma": "no-cache", "X-Frame-Options": "DENY",
                 "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}


def signin(request: Request) -> SignIn:
    return request.app.state.signin  # type: ignore[no-any-return]


def _request_origin(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def _redirects(request: Request) -> set[str]:
    return allowed_redirects(_request_origin(request), context.server(request).settings.base_url)


def _audiences(request: Request) -> set[str]:
    """``aud`` may name the FHIR base as configured or as this request reached it."""
    return {context.base_url(request), _request_origin(request) + "/fhir"}


def _language(request: Request, params: dict[str, str]) -> str:
    return login_page.negotiate(params.get("ui_locales"), request.cookies.get(login_page.LANG_COOKIE),
                                request.headers.get("accept-language"))


def _single(items: list[tuple[str, str]]) -> tuple[dict[str, str], bool]:
    """The parameters, and whether one was repeated (RFC 6749 §3.1: parameters MUST NOT be repeated)."""
    out: dict[str, str] = {}
    repeated = False
    for key, value in items:
        repeated = repeated or key in out
        out[key] = value
    return out, repeated


def _html(text: str, status: int, request: Request) -> HTMLResponse:
    targets = " ".join(["'self'", *sorted({origin(u) for u in _redirects(request)})])
    return HTMLResponse(text, status, {**_PAGE_HEADERS, "Content-Security-Policy": login_page.csp(targets)})


def _error_page(request: Request, lang: str, key: str) -> Response:
    return _html(login_page.error_page(lang, key, _request_origin(request) + "/app/"), 400, request)


def _send_back(location: str) -> Response:
    return RedirectResponse(location, 302, {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"})


def _check(request: Request, params: dict[str, str], repeated: bool) -> AuthorizeRequest:
    return check_request(params, _redirects(request), _audiences(request), repeated=repeated)


def _checked(request: Request, params: dict[str, str], repeated: bool, lang: str) -> AuthorizeRequest | Response:
    """The checked authorization request, or the answer to a bad one: an error page when the client or its
    redirect URI cannot be trusted, else a redirect back with ``error=`` (RFC 6749 §4.1.2.1)."""
    try:
        return _check(request, params, repeated)
    except PageError as exc:
        return _error_page(request, lang, exc.key)
    except RedirectError as exc:
        return _send_back(exc.location())


async def _form_page(request: Request, req: AuthorizeRequest, lang: str, status: int = 200,
                     error: str | None = None, username: str = "") -> Response:
    """The login form with a fresh CSRF token bound to the browser's cookie (kept if it has one)."""
    nonce = request.cookies.get(CSRF_COOKIE) or ""
    if not 20 <= len(nonce) <= 64:
        nonce = secrets.token_urlsafe(24)
    token = await signin(request).form_token(nonce)
    page = login_page.login(lang, req.fields(), token, action=request.url.path, error=error, username=username)
    response = _html(page, status, request)
    response.set_cookie(CSRF_COOKIE, nonce, max_age=int(signin(request).form_seconds), path=request.url.path,
                        secure=request.url.scheme == "https", httponly=True, samesite="strict")
    return response


async def authorize_page(request: Request) -> Response:
    params, repeated = _single(request.query_params.multi_items())
    lang = _language(request, params)
    req = _checked(request, params, repeated, lang)
    if isinstance(req, Response):
        return req
    return await _form_page(request, req, lang)


async def authorize_submit(request: Request) -> Response:
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    lang = _language(request, dict(request.query_params))
    if ctype != "application/x-www-form-urlencoded":
        return _error_page(request, lang, "error_request")
    try:
        body = await read_body(request, _MAX_FORM)
    except FHIRError:
        return _error_page(request, lang, "error_request")
    params, repeated = _single(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
    lang = _language(request, params)
    username, password = params.pop("username", ""), params.pop("password", "")
    csrf = params.pop("csrf_token", "")
    req = _checked(request, params, repeated, lang)
    if isinstance(req, Response):
        return req
    service = signin(request)
    if not await service.form_token_valid(csrf, request.cookies.get(CSRF_COOKIE)):
        return await _form_page(request, req, lang, 400, "error_form", username)
    try:
        user = await service.login(username, password)
    except LoginRefused as exc:
        _audit_login(request, normalise_username(username)[:128], None, exc.kind)
        return await _form_page(request, req, lang, 200, f"error_{exc.kind}", username)
    _audit_login(request, user.username, user, "success")
    try:
        code = await service.issue_code(req, user)
    except RedirectError as exc:
        return _send_back(exc.location())
    response = _send_back(req.redirect(code=code))
    response.delete_cookie(CSRF_COOKIE, path=request.url.path)
    return response


def _audit_login(request: Request, username: str, user: User | None, result: str) -> None:
    srv = context.server(request)
    if srv.audit is None:
        return
    description = {"success": "signed in", "credentials": "sign-in refused: username or password incorrect, "
                   "or account disabled", "locked": "sign-in refused: too many failures (locked)"}[result]
    try:
        srv.audit.submit(login_event(username or "(empty)", success=result == "success",
                                     organization=user.organization if user else None, client_id=PUBLIC_CLIENT_ID,
                                     base_url=context.base_url(request), description=description,
                                     canonical_base=srv.settings.canonical_base))
    except Exception:  # noqa: BLE001 - an audit problem must not block a sign-in answer
        log.exception("could not queue the AuditEvent of a sign-in")


async def logout(request: Request) -> Response:
    """Sign-out: the bearer token of this request is refused from now on, on every worker."""
    scheme, _, token = (request.headers.get("authorization") or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized()
    await signin(request).security.revoke(token.strip())
    caller = context.caller(request)
    srv = context.server(request)
    if caller.user is not None and srv.audit is not None:
        srv.audit.submit(login_event(caller.user, success=True, organization=caller.organization,
                                     client_id=caller.client_id, base_url=context.base_url(request),
                                     description="signed out", canonical_base=srv.settings.canonical_base,
                                     logout=True))
    return Response(status_code=204, headers={"Cache-Control": "no-store"})


async def revoke(request: Request) -> Response:
    """RFC 7009: ``token=…`` (form); 200 whether or not the token was valid (§2.2)."""
    try:
        body = await read_body(request, _MAX_FORM)
    except FHIRError:
        body = b""
    params, _ = _single(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
    if params.get("token"):
        await signin(request).security.revoke(params["token"])
    return Response(status_code=200, headers={"Cache-Control": "no-store"})


def router() -> APIRouter:
    r = APIRouter()
    r.add_api_route("/fhir" + AUTHORIZE_PATH, authorize_page, methods=["GET"])
    r.add_api_route("/fhir" + AUTHORIZE_PATH, authorize_submit, methods=["POST"])
    r.add_api_route("/fhir" + LOGOUT_PATH, logout, methods=["POST"])
    r.add_api_route("/fhir" + REVOKE_PATH, revoke, methods=["POST"])
    return r
