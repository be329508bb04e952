"""Checking a JWT signed by a registered client: the token endpoint's ``client_assertion`` (RFC 7523) and a
CDS Hooks 2.0 client's bearer JWT use the same rules (ACCESS.md §A).

``alg`` RS384 or ES384 only (``none``, HS* and everything else refused before any key is touched), ``kid``
naming a key of the client's registered JWKS, ``iss`` = ``sub`` = client_id, ``aud`` = the URL called, ``exp``
at most 5 minutes ahead, ``jti`` never seen before (kept in the store until ``exp`` + skew, so the check holds
across workers), 60 s clock skew. Any failure is one :class:`Refused` that carries no reason outward; the
reason goes to the debug log only.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import jwt

from fhir_server.security.clients import ALGORITHMS, Client
from fhir_server.store.security import SecurityStore

SKEW = 60
MAX_LIFETIME = 300
MAX_CLIENT_ID = 256
log = logging.getLogger("fhir_server.security")


class Refused(Exception):
    """The assertion is not acceptable; ``client_id`` is the claimed issuer when one could be read."""

    def __init__(self, client_id: str | None, reason: str) -> None:
        super().__init__(reason)
        self.client_id = client_id


@dataclass(frozen=True)
class Verified:
    client: Client
    claims: dict[str, Any]


def claimed_client(token: str) -> str | None:
    """The ``iss`` the token claims, unverified (to count failures per client); None if unreadable."""
    try:
        iss = jwt.decode(token, options={"verify_signature": False}).get("iss")
    except (jwt.PyJWTError, ValueError, TypeError):
        return None
    return iss if isinstance(iss, str) and 0 < len(iss) <= MAX_CLIENT_ID else None


async def verify(
    token: str,
    *,
    audience: str,
    now: float,
    find_client: Callable[[str], Awaitable[Client | None]],
    registry: SecurityStore,
    require_sub: bool = True,
) -> Verified:
    """The verified claims of ``token`` and its (active) client, or :class:`Refused`."""
    try:
        header = jwt.get_unverified_header(token)
    except (jwt.PyJWTError, ValueError, TypeError) as exc:
        raise Refused(None, f"unreadable header: {exc}") from None
    client_id = claimed_client(token)
    alg, kid = header.get("alg"), header.get("kid")
    if alg not in ALGORITHMS:
        raise Refused(client_id, f"alg {alg!r} is not allowed")
    if not isinstance(kid, str) or client_id is None:
        raise Refused(client_id, "no kid or no iss")
    client = await find_client(client_id)
    if client is None or not client.active:
        raise Refused(client_id, "unknown or disabled client")
    jwk = client.key(kid)
    if jwk is None:
        raise Refused(client_id, f"unknown kid {kid!r}")
    try:
        key = jwt.PyJWK(jwk, algorithm=alg)
        claims: dict[str, Any] = jwt.decode(
            token, key, algorithms=[alg], audience=audience, issuer=client_id, leeway=SKEW,
            options={"require": ["iss", "aud", "exp", "jti", *(["sub"] if require_sub else [])]},
        )
    except (jwt.PyJWTError, ValueError, TypeError) as exc:
        raise Refused(client_id, f"signature or claims: {exc}") from None
    if claims.get("sub", client_id) != client_id:
        raise Refused(client_id, "sub is not iss")
    exp, jti = claims["exp"], claims["jti"]
    if not isinstance(exp, int | float) or exp > now + MAX_LIFETIME + SKEW:
        raise Refused(client_id, "exp more than 5 minutes ahead")
    if not isinstance(jti, str) or not 0 < len(jti) <= 256:
        raise Refused(client_id, "jti is not a short string")
    if not await registry.use_jti(f"{client_id}|{jti}", float(exp) + SKEW):
        raise Refused(client_id, "jti replayed")
    return Verified(client, claims)


def stated_purposes(claims: dict[str, Any]) -> list[str] | None:
    """``extensions.hl7-b2b.purpose_of_use`` (a list, or one string), or None when absent; a malformed
    extension is ``[]`` (which no rule accepts)."""
    ext = claims.get("extensions")
    if ext is None:
        return None
    b2b = ext.get("hl7-b2b") if isinstance(ext, dict) else None
    if b2b is None and isinstance(ext, dict):
        return None
    if not isinstance(b2b, dict):
        return []
    value = b2b.get("purpose_of_use")
    if value is None:
        return None
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    return []
