"""Sign-in for people: the server as its own authorization server for the Care Partner web page (issue #19),
SMART App Launch 2.x *standalone launch* with the authorization code grant (RFC 6749 §4.1) and PKCE S256
(RFC 7636).

- The page is one built-in **public client**, :data:`PUBLIC_CLIENT_ID` (no secret, PKCE mandatory). Its only
  redirect URIs are ``<origin the request came to>/app/`` and ``<FHIR_BASE_URL origin>/app/``, compared as exact
  strings: anything else gets an error page, never a redirect (RFC 6749 §4.1.2.1, §10.6).
- ``GET /fhir/auth/authorize`` checks the request (:func:`check_request`) and shows a login form; the form posts
  back with a CSRF token (:meth:`SignIn.form_token`: an HMAC-signed, short-lived value bound to a cookie, a
  double submit) and the person's username and password (:meth:`SignIn.login`).
- A successful login gives a one-time code (:meth:`SignIn.issue_code`), valid :data:`CODE_SECONDS`, kept in the
  store by its SHA-256 and bound to the client, the redirect URI, the PKCE challenge, the person, the granted
  scopes and purpose, and the ``jti`` its access token will have. ``POST /fhir/auth/token`` with
  ``grant_type=authorization_code`` redeems it (:meth:`SignIn.exchange`): the store marks it redeemed
  atomically, so a second redemption fails on every worker — and revokes the token the first one got (RFC 6749
  §4.1.2: a code used twice may have been stolen).
- Lockout: :data:`LOCK_LIMIT` failed sign-ins of one username within :data:`LOCK_WINDOW` seconds (counted in the
  store, whichever worker saw them; unknown usernames are counted too, so the lock says nothing about whether a
  name exists) refuse further attempts until the oldest of them leaves the window.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

import jwt

from fhir_server.security import scopes as sc
from fhir_server.security.errors import TokenError
from fhir_server.security.service import Security
from fhir_server.security.users import User, dummy_hash, normalise_username, verify_password

PUBLIC_CLIENT_ID = "ascmi-care-partner-app"
APP_PATH = "/app/"
AUTHORIZE_PATH = "/auth/authorize"  # below the FHIR base, like the token endpoint
LOGOUT_PATH = "/auth/logout"
REVOKE_PATH = "/auth/revoke"
CODE_SECONDS = 60
FORM_SECONDS = 600
LOCK_LIMIT = 5
LOCK_WINDOW = 15 * 60.0
CSRF_COOKIE = "ascmi_login_csrf"
_PKCE = re.compile(r"[A-Za-z0-9\-._~]{43,128}")  # RFC 7636 §4.1 (verifier) and §4.2 (S256 challenge: 43)
REQUEST_FIELDS = ("response_type", "client_id", "redirect_uri", "scope", "state", "aud", "code_challenge",
                  "code_challenge_method", "ui_locales")


class PageError(Exception):
    """The request cannot be answered with a redirect (unknown client, unregistered redirect URI): an error page.
    ``key`` names the message in the login page catalogue."""

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


class RedirectError(Exception):
    """An RFC 6749 §4.1.2.1 error sent back to the (valid) redirect URI as ``error=…&state=…``."""

    def __init__(self, request: AuthorizeRequest, error: str, description: str) -> None:
        super().__init__(f"{error}: {description}")
        self.request = request
        self.error = error
        self.description = description

    def location(self) -> str:
        return self.request.redirect(error=self.error, error_description=self.description)


class LoginRefused(Exception):
    """The sign-in failed; ``kind`` is ``credentials`` (one message for every reason) or ``locked``."""

    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self.kind = kind


@dataclass(frozen=True)
class AuthorizeRequest:
    response_type: str
    client_id: str
    redirect_uri: str
    scope: str
    state: str
    aud: str
    code_challenge: str
    code_challenge_method: str
    ui_locales: str = ""

    def fields(self) -> dict[str, str]:
        """What the login form carries back (hidden fields), so the POST is checked like the GET."""
        return {k: v for k, v in asdict(self).items() if v}

    def redirect(self, **params: str) -> str:
        """The redirect URI with ``params`` and ``state`` in its query (RFC 6749 §4.1.2)."""
        sep = "&" if "?" in self.redirect_uri else "?"
        query = {**params, **({"state": self.state} if self.state else {})}
        return self.redirect_uri + sep + urlencode(query)


def origin(url: str) -> str:
    """``https://h:8443/fhir`` → ``https://h:8443``"""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def allowed_redirects(request_origin: str, configured_base: str | None) -> set[str]:
    """The page's redirect URIs: ``/app/`` on the origin the request came to and on ``FHIR_BASE_URL``'s."""
    found = {request_origin.rstrip("/") + APP_PATH}
    if configured_base:
        found.add(origin(configured_base) + APP_PATH)
    return found


def check_request(params: Mapping[str, str], redirects: set[str], audiences: set[str], *,
                  repeated: bool = False) -> AuthorizeRequest:
    """An authorization request (SMART App Launch standalone) or :class:`PageError` / :class:`RedirectError`.

    The client and redirect URI are checked first: until both are known good, nothing is redirected."""
    if params.get("client_id") != PUBLIC_CLIENT_ID:
        raise PageError("error_client")
    if params.get("redirect_uri") not in redirects:
        raise PageError("error_redirect")
    req = AuthorizeRequest(**{k: str(params.get(k) or "") for k in REQUEST_FIELDS})
    if repeated:
        raise RedirectError(req, "invalid_request", "a parameter is repeated")
    if req.response_type != "code":
        raise RedirectError(req, "unsupported_response_type", "response_type must be code")
    if not req.state:
        raise RedirectError(req, "invalid_request", "send a state value (SMART App Launch requires it)")
    if req.code_challenge_method != "S256" or not _PKCE.fullmatch(req.code_challenge):
        raise RedirectError(req, "invalid_request", "PKCE is required: code_challenge with "
                                                    "code_challenge_method=S256")
    if req.aud.rstrip("/") not in {a.rstrip("/") for a in audiences}:
        raise RedirectError(req, "invalid_request", "aud must be this server's FHIR base URL")
    if not sc.parse(req.scope, "user"):
        raise RedirectError(req, "invalid_scope", "ask for user/ scopes (e.g. user/*.cruds)")
    return req


def pkce_matches(verifier: str, challenge: str) -> bool:
    """RFC 7636 §4.6: ``BASE64URL(SHA256(verifier)) == challenge``, compared in constant time."""
    if not _PKCE.fullmatch(verifier):
        return False
    digest = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode("ascii")).digest()).decode().rstrip("=")
    return hmac.compare_digest(digest, challenge)


def _code_key(code: str) -> str:
    return hashlib.sha256(code.encode("utf-8", "replace")).hexdigest()


class SignIn:
    """The authorization server's state-changing steps; HTTP (pages, cookies, redirects) is in ``api/signin.py``."""

    def __init__(self, security: Security, *, token_lifetime: int = 900) -> None:
        self.security = security
        self.token_lifetime = token_lifetime
        self.code_seconds: float = CODE_SECONDS
        self.form_seconds: float = FORM_SECONDS

    # --- the login form's CSRF token ------------------------------------------------------------------------

    async def _form_key(self) -> bytes:
        return hmac.new(await self.security.secret(), b"login-form", hashlib.sha256).digest()

    async def form_token(self, nonce: str) -> str:
        """A token for the form that only matches the browser holding ``nonce`` in its cookie, until it expires."""
        claims = {"n": hashlib.sha256(nonce.encode()).hexdigest(), "exp": int(time.time() + self.form_seconds)}
        return jwt.encode(claims, await self._form_key(), algorithm="HS256")

    async def form_token_valid(self, token: str, nonce: str | None) -> bool:
        if not token or not nonce:
            return False
        try:
            claims = jwt.decode(token, await self._form_key(), algorithms=["HS256"], options={"require": ["exp"]})
        except jwt.PyJWTError:
            return False
        return hmac.compare_digest(str(claims.get("n", "")), hashlib.sha256(nonce.encode()).hexdigest())

    # --- credentials ----------------------------------------------------------------------------------------

    async def login(self, username: str, password: str) -> User:
        """The signed-in user, or :class:`LoginRefused`. Every failure with an unlocked name costs one scrypt
        check (an unknown name is checked against a dummy hash) and is counted for the lockout."""
        name = normalise_username(username)[:128]
        key = f"user|{name}"
        now = time.time()
        registry = self.security.registry
        if len(await registry.failures_since(key, now - LOCK_WINDOW)) >= LOCK_LIMIT:
            raise LoginRefused("locked")
        doc = await registry.get_user(name) if name else None
        user = None if doc is None else User.from_json(doc)
        stored = user.password_hash if user is not None else dummy_hash()
        matches = await asyncio.to_thread(verify_password, password, stored)
        if user is None or not matches or not user.active:
            await registry.add_failure(key, now)
            raise LoginRefused("credentials")
        return user

    # --- codes ----------------------------------------------------------------------------------------------

    async def issue_code(self, req: AuthorizeRequest, user: User) -> str:
        """A one-time code for ``user``, or :class:`RedirectError` ``invalid_scope`` when the user is allowed none
        of the requested scopes."""
        granted = sc.grant(sc.parse(req.scope, "user"), user.allowed)
        if not granted:
            raise RedirectError(req, "invalid_scope", "none of the requested scopes is allowed for this user")
        code = secrets.token_urlsafe(32)
        doc = {"client_id": req.client_id, "redirect_uri": req.redirect_uri, "code_challenge": req.code_challenge,
               "username": user.username, "scope": sc.format_scopes(granted, "user"), "purpose": user.purpose,
               "jti": secrets.token_urlsafe(12)}
        await self.security.registry.put_code(_code_key(code), doc, time.time() + self.code_seconds)
        return code

    async def exchange(self, form: Mapping[str, str]) -> dict[str, Any]:
        """``grant_type=authorization_code`` at the token endpoint (RFC 6749 §4.1.3, RFC 7636 §4.5)."""
        if form.get("client_id") != PUBLIC_CLIENT_ID:
            raise TokenError("invalid_client", "client authentication failed", 401)
        code, verifier = form.get("code") or "", form.get("code_verifier") or ""
        if not code or not verifier or not form.get("redirect_uri"):
            raise TokenError("invalid_request", "send code, redirect_uri, client_id and code_verifier (PKCE)")
        doc = await self.security.registry.redeem_code(_code_key(code), time.time())
        if doc is not None and doc.get("redeemed"):
            await self.security.revoke_jti(str(doc.get("jti")), time.time() + self.token_lifetime)
            doc = None
        if (doc is None or doc.get("client_id") != form.get("client_id")
                or doc.get("redirect_uri") != form.get("redirect_uri")
                or not pkce_matches(verifier, str(doc.get("code_challenge") or ""))):
            raise TokenError("invalid_grant", "the code is invalid, expired, already used, or does not match "
                                              "redirect_uri or code_verifier")
        user = await self.security.user(str(doc["username"]), fresh=True)
        if user is None or not user.active:
            raise TokenError("invalid_grant", "the code is invalid, expired, already used, or does not match "
                                              "redirect_uri or code_verifier")
        scope = str(doc["scope"])
        purpose = doc.get("purpose")
        token = await self.security.mint(PUBLIC_CLIENT_ID, sc.parse(scope, "user"), purpose if isinstance(
            purpose, str) else None, self.token_lifetime, user=user.username, jti=str(doc["jti"]))
        return {"access_token": token, "token_type": "Bearer", "expires_in": self.token_lifetime, "scope": scope,
                "user": {"username": user.username, "organization": user.organization, "display": user.display}}
