"""The security service one app (or one CLI command) holds: issues access tokens and turns a bearer token into a
:class:`~fhir_server.security.caller.Caller`.

Access tokens are JWTs signed (HS256) with a server key kept in the store, so every worker can check any
worker's token without a round trip, and carry the client, granted scopes and purpose. A verified token is
remembered (bounded cache) so a request costs a dictionary lookup; the client's ``active`` flag is re-read from
the store at most every ``FHIR_CLIENT_CACHE_SECONDS`` (default 1 s; at once in the worker that disabled it),
which is how disabling a client kills its live tokens.

A person signed in through the Care Partner web page (:mod:`fhir_server.security.signin`) gets the same kind of
token with a ``user`` claim and ``user/`` scopes: the caller acts for the user's Organization (re-read like a
client's ``active`` flag, so disabling a user ends their tokens). A revoked token (sign-out) is recorded in the
store until it expires; each worker re-checks a token against that list at most every
``FHIR_CLIENT_CACHE_SECONDS`` (at once in the worker that revoked it).
"""

from __future__ import annotations

import math
import secrets
import time
from typing import Any

import jwt

from fhir_server.security import assertion
from fhir_server.security import scopes as sc
from fhir_server.security.caller import Caller
from fhir_server.security.clients import Client, purpose_code
from fhir_server.security.errors import TokenError, Unauthorized, invalid_client
from fhir_server.security.users import User
from fhir_server.store.base import Store
from fhir_server.store.security import SecurityStore, security_store

CLIENT_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
TOKEN_ISSUER = "urn:ascmi-fhir-server:token"
TOKEN_PATH = "/auth/token"  # below the FHIR base
SECRET_NAME = "access-token-hs256"
FAILURE_LIMIT = 10
FAILURE_WINDOW = 60.0
_TOKEN_CACHE_MAX = 50_000


class Security:
    def __init__(self, store: Store, *, token_lifetime: int = 300, client_cache_seconds: float = 1.0,
                 purposes: frozenset[str] = frozenset()) -> None:
        self.registry: SecurityStore = security_store(store)
        self.token_lifetime = token_lifetime
        self.client_cache_seconds = client_cache_seconds
        self.purposes = purposes
        self._secret: bytes | None = None
        self._tokens: dict[str, tuple[Caller, float, str | None]] = {}  # token → caller, exp, jti
        self._clients: dict[str, tuple[Client | None, float]] = {}
        self._users: dict[str, tuple[User | None, float]] = {}
        self._revocation_checked: dict[str, float] = {}
        self._revoked: dict[str, float] = {}  # token → exp, revoked in this worker (refused at once)

    async def open(self) -> None:
        self._secret = await self.registry.secret(SECRET_NAME, lambda: secrets.token_bytes(32))

    async def secret(self) -> bytes:
        if self._secret is None:
            await self.open()
        assert self._secret is not None
        return self._secret

    # --- clients --------------------------------------------------------------------------------------------

    async def client(self, client_id: str) -> Client | None:
        """The registered client, re-read from the store when the cached copy is older than the cache time."""
        now = time.monotonic()
        cached = self._clients.get(client_id)
        if cached is not None and now - cached[1] < self.client_cache_seconds:
            return cached[0]
        doc = await self.registry.get_client(client_id)
        client = None if doc is None else Client.from_json(doc)
        if len(self._clients) > _TOKEN_CACHE_MAX:
            self._clients.clear()
        self._clients[client_id] = (client, now)
        return client

    async def user(self, username: str, *, fresh: bool = False) -> User | None:
        """The user record, re-read from the store when the cached copy is older than the cache time."""
        now = time.monotonic()
        cached = self._users.get(username)
        if not fresh and cached is not None and now - cached[1] < self.client_cache_seconds:
            return cached[0]
        doc = await self.registry.get_user(username)
        found = None if doc is None else User.from_json(doc)
        if len(self._users) > _TOKEN_CACHE_MAX:
            self._users.clear()
        self._users[username] = (found, now)
        return found

    async def add_user(self, user: User) -> bool:
        """False when the username is taken."""
        added = await self.registry.add_user(user.to_json())
        self._users.pop(user.username, None)
        return added

    async def replace_user(self, user: User) -> bool:
        """Store a changed user (active flag, password …); False when no such user."""
        found = await self.registry.replace_user(user.to_json())
        self._users.pop(user.username, None)
        return found

    async def add_client(self, client: Client) -> None:
        await self.registry.add_client(client.to_json())
        self._clients.pop(client.client_id, None)

    async def set_active(self, client_id: str, active: bool) -> bool:
        found = await self.registry.set_client_active(client_id, active)
        self._clients.pop(client_id, None)
        return found

    # --- the token endpoint ---------------------------------------------------------------------------------

    async def issue(self, form: dict[str, str], token_url: str) -> dict[str, Any]:
        """Answer a client-credentials token request (RFC 6749 §4.4 + RFC 7523), or raise :class:`TokenError`."""
        if form.get("grant_type") != "client_credentials":
            raise TokenError("unsupported_grant_type", "grant_type must be client_credentials (SMART Backend "
                                                       "Services) or authorization_code (the web page sign-in)")
        token = form.get("client_assertion") or ""
        if form.get("client_assertion_type") != CLIENT_ASSERTION_TYPE or not token:
            raise TokenError("invalid_request", f"send client_assertion_type={CLIENT_ASSERTION_TYPE} and a "
                                                "client_assertion (RFC 7523)")
        now = time.time()
        claimed = assertion.claimed_client(token)
        if claimed is not None:
            await self._throttle(claimed, now)
        try:
            verified = await assertion.verify(token, audience=token_url, now=now, find_client=self.client,
                                              registry=self.registry)
            client = verified.client
            purpose = self.purpose_for(client, verified.claims)
            granted = sc.grant(sc.parse(form.get("scope", "")), client.allowed)
            if not granted:
                raise TokenError("invalid_scope", "none of the requested scopes is allowed for this client")
        except assertion.Refused as exc:
            assertion.log.debug("client assertion refused: %s", exc)
            if exc.client_id is not None:
                await self.registry.add_failure(exc.client_id, now)
            raise invalid_client() from None
        except TokenError:
            if claimed is not None:
                await self.registry.add_failure(claimed, now)
            raise
        access_token = await self.mint(client.client_id, granted, purpose, self.token_lifetime)
        return {"access_token": access_token, "token_type": "bearer", "expires_in": self.token_lifetime,
                "scope": sc.format_scopes(granted)}

    async def _throttle(self, client_id: str, now: float) -> None:
        recent = await self.registry.failures_since(client_id, now - FAILURE_WINDOW)
        if len(recent) >= FAILURE_LIMIT:
            wait = max(1, math.ceil(recent[-FAILURE_LIMIT] + FAILURE_WINDOW - now))
            raise TokenError("invalid_client", "too many failed attempts; retry later", 429,
                             {"Retry-After": str(wait)})

    def purpose_for(self, client: Client, claims: dict[str, Any]) -> str | None:
        """The purpose of use of a token (HL7 B2B ``purpose_of_use``), by the rules of ACCESS.md §A."""
        stated = assertion.stated_purposes(claims)
        if stated is None:
            if client.is_administrator and len(client.purposes) != 1:
                return None
            if len(client.purposes) == 1:
                return client.purposes[0]
            raise TokenError("invalid_request", "state one purpose of use in extensions.hl7-b2b.purpose_of_use")
        if len(stated) != 1:
            raise TokenError("invalid_request", "extensions.hl7-b2b.purpose_of_use must hold exactly one code")
        code = purpose_code(stated[0])
        allowed = set(client.purposes) or (self.purposes if client.is_administrator else set())
        if code not in allowed:
            raise TokenError("invalid_request", "this purpose of use is not allowed for this client")
        return code

    async def mint(self, client_id: str, granted: sc.Scopes, purpose: str | None, lifetime: int,
                   user: str | None = None, jti: str | None = None) -> str:
        """An access token; with ``user``, a person's token (``user/`` scopes, the ``user`` claim)."""
        now = int(time.time())
        claims: dict[str, Any] = {"iss": TOKEN_ISSUER, "sub": client_id, "iat": now, "exp": now + lifetime,
                                  "jti": jti or secrets.token_urlsafe(12),
                                  "scope": sc.format_scopes(granted, "system" if user is None else "user")}
        if purpose is not None:
            claims["purpose"] = purpose
        if user is not None:
            claims["user"] = user
        return jwt.encode(claims, await self.secret(), algorithm="HS256")

    # --- bearer tokens on requests --------------------------------------------------------------------------

    async def authenticate(self, authorization: str | None, cds_audience: str | None = None) -> Caller:
        """The caller a request's ``Authorization`` header proves, or :class:`Unauthorized`.

        With ``cds_audience`` (the CDS Hooks service URL), a JWT signed by a registered client is accepted too.
        """
        if not authorization:
            raise Unauthorized()
        scheme, _, token = authorization.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise Unauthorized()
        entry = self._tokens.get(token)
        if entry is None:
            entry = await self._verify(token, cds_audience)
        caller, expires, jti = entry
        if time.time() > expires + assertion.SKEW:
            self._tokens.pop(token, None)
            raise Unauthorized()
        if caller.user is not None:
            user = await self.user(caller.user)
            if user is None or not user.active or user.organization != caller.organization:
                raise Unauthorized()
        else:
            client = await self.client(caller.client_id)
            if client is None or not client.active:
                raise Unauthorized()
        if jti is not None and await self.is_revoked(token, jti):
            raise Unauthorized()
        return caller

    # --- revocation (sign-out) ------------------------------------------------------------------------------

    async def revoke(self, token: str) -> bool:
        """Refuse this access token from now on, on every worker (RFC 7009); False when it is not one of ours
        (a token this server did not sign, or one already expired, needs no revocation)."""
        try:
            claims = jwt.decode(token, await self.secret(), algorithms=["HS256"], issuer=TOKEN_ISSUER,
                                leeway=assertion.SKEW, options={"require": ["iss", "sub", "exp", "jti"]})
        except jwt.PyJWTError:
            return False
        expires = float(claims["exp"]) + assertion.SKEW
        await self.revoke_jti(str(claims["jti"]), float(claims["exp"]))
        self._revoked[token] = expires
        self._tokens.pop(token, None)
        return True

    async def revoke_jti(self, jti: str, expires: float) -> None:
        """Refuse the token with this ``jti`` (one that expires by ``expires``) on every worker; other workers
        notice within the cache time, this one at its next check (:meth:`is_revoked`)."""
        await self.registry.use_jti(f"revoked|{jti}", expires + assertion.SKEW)
        self._revocation_checked = {}

    async def is_revoked(self, token: str, jti: str) -> bool:
        """Revoked here, or (checked at most every cache period per token) revoked by another worker."""
        now = time.time()
        if token in self._revoked:
            return True
        checked = self._revocation_checked.get(token)
        mono = time.monotonic()
        if checked is not None and mono - checked < self.client_cache_seconds:
            return False
        if await self.registry.jti_recorded(f"revoked|{jti}", now):
            self._revoked[token] = now + self.token_lifetime + assertion.SKEW
            self._tokens.pop(token, None)
            return True
        if len(self._revocation_checked) > _TOKEN_CACHE_MAX:
            self._revocation_checked.clear()
            self._revoked = {t: e for t, e in self._revoked.items() if e > now}
        self._revocation_checked[token] = mono
        return False

    async def _verify(self, token: str, cds_audience: str | None) -> tuple[Caller, float, str | None]:
        secret = await self.secret()
        try:
            claims = jwt.decode(token, secret, algorithms=["HS256"], issuer=TOKEN_ISSUER, leeway=assertion.SKEW,
                                options={"require": ["iss", "sub", "exp", "scope"]})
        except jwt.PyJWTError:
            if cds_audience is None:
                raise Unauthorized() from None
            return await self._verify_client_jwt(token, cds_audience)
        purpose = claims.get("purpose")
        username = claims.get("user")
        if isinstance(username, str):
            user = await self.user(username)
            if user is None:
                raise Unauthorized()
            caller = Caller(str(claims["sub"]), user.organization, sc.parse(str(claims["scope"]), "user"),
                            purpose if isinstance(purpose, str) else None, user=user.username)
        else:
            client = await self.client(str(claims["sub"]))
            if client is None:
                raise Unauthorized()
            caller = Caller(client.client_id, client.organization, sc.parse(str(claims["scope"])),
                            purpose if isinstance(purpose, str) else None)
        jti = claims.get("jti")
        entry = (caller, float(claims["exp"]), jti if isinstance(jti, str) else None)
        if len(self._tokens) > _TOKEN_CACHE_MAX:
            self._tokens.clear()
        self._tokens[token] = entry
        return entry

    async def _verify_client_jwt(self, token: str, audience: str) -> tuple[Caller, float, str | None]:
        """A CDS Hooks 2.0 client JWT: single use (its ``jti``), so it is never cached (nor revoked)."""
        try:
            verified = await assertion.verify(token, audience=audience, now=time.time(), find_client=self.client,
                                              registry=self.registry, require_sub=False)
            purpose = self.purpose_for(verified.client, verified.claims)
        except (assertion.Refused, TokenError) as exc:
            assertion.log.debug("CDS Hooks client JWT refused: %s", exc)
            raise Unauthorized() from None
        client = verified.client
        return Caller(client.client_id, client.organization, dict(client.allowed), purpose), float(
            verified.claims["exp"]), None
