"""Registered clients (ACCESS.md §A): who may ask for tokens, with which keys, for whom, and for what.

A client is kept in the store as a plain JSON document (:meth:`Client.to_json`) so every worker and replica sees
the same registry. Keys are a JWKS of public keys — RSA of at least 2048 bits or EC P-384, each with a ``kid``
(assertions name their key by ``kid``). An administrator client has no Organization; a Care Partner client acts
for exactly one.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from fhir_server.security import scopes as sc

ADMIN_DEFAULT_SCOPES = ("system/*.cruds",)
ALGORITHMS = ("RS384", "ES384")
_ORGANIZATION = re.compile(r"Organization/[A-Za-z0-9\-.]{1,64}")
_PRIVATE_MEMBERS = ("d", "p", "q", "dp", "dq", "qi", "k")


class ClientError(ValueError):
    """A registration that cannot be accepted; the message says why (shown to the administrator)."""


@dataclass(frozen=True)
class Client:
    client_id: str
    jwks: dict[str, Any]
    organization: str | None = None
    scopes: tuple[str, ...] = ADMIN_DEFAULT_SCOPES
    purposes: tuple[str, ...] = ()
    active: bool = True
    created: str = ""
    allowed: sc.Scopes = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "allowed", sc.parse(self.scopes))

    @property
    def is_administrator(self) -> bool:
        return self.organization is None

    def key(self, kid: str) -> dict[str, Any] | None:
        """The registered public JWK with this ``kid`` (keys are compared by ``kid`` only)."""
        for k in self.jwks.get("keys", []):
            if isinstance(k, dict) and k.get("kid") == kid:
                return k
        return None

    def to_json(self) -> dict[str, Any]:
        return {
            "client_id": self.client_id,
            "organization": self.organization,
            "jwks": self.jwks,
            "scopes": list(self.scopes),
            "purposes": list(self.purposes),
            "active": self.active,
            "created": self.created,
        }

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> Client:
        return cls(
            client_id=str(doc["client_id"]),
            jwks=dict(doc.get("jwks") or {"keys": []}),
            organization=doc.get("organization"),
            scopes=tuple(doc.get("scopes") or ()),
            purposes=tuple(doc.get("purposes") or ()),
            active=bool(doc.get("active", True)),
            created=str(doc.get("created") or ""),
        )


def check_key(jwk: Any) -> str | None:
    """Why this JWK cannot be registered, or None: public RSA ≥ 2048 bits or EC P-384 with a ``kid``."""
    if not isinstance(jwk, dict):
        return "each key must be a JSON object (a JWK)"
    if not isinstance(jwk.get("kid"), str) or not jwk["kid"]:
        return "each key needs a 'kid' (assertions name their key by kid)"
    if any(m in jwk for m in _PRIVATE_MEMBERS):
        return f"key {jwk['kid']!r} contains private key material: register the public key only"
    if jwk.get("alg") not in (None, *ALGORITHMS):
        return f"key {jwk['kid']!r} has alg {jwk.get('alg')!r}; only RS384 and ES384 are accepted"
    try:
        key = jwt.PyJWK(jwk, algorithm="RS384" if jwk.get("kty") == "RSA" else "ES384").key
    except (jwt.PyJWKError, jwt.InvalidKeyError, ValueError, TypeError, KeyError) as exc:
        return f"key {jwk['kid']!r} is not a usable RSA or EC public key ({exc})"
    if isinstance(key, rsa.RSAPublicKey):
        return None if key.key_size >= 2048 else f"RSA key {jwk['kid']!r} has {key.key_size} bits; 2048 at least"
    if isinstance(key, ec.EllipticCurvePublicKey):
        return None if key.curve.name == "secp384r1" else f"EC key {jwk['kid']!r} must be on curve P-384"
    return f"key {jwk['kid']!r} must be an RSA or EC P-384 public key"


def new_client(
    jwks: Any,
    *,
    organization: str | None,
    scope_list: Iterable[str] = (),
    purposes: Iterable[str] = (),
    known_purposes: Iterable[str] = (),
    keys_required: bool = True,
) -> Client:
    """Check a registration and build the client (``client_id`` is a fresh random value).

    ``purposes`` are normalised to ascmi-purpose codes (``urn:oid:2.16.840.1.113883.5.8#TREAT`` → ``TREAT``)
    and must be among ``known_purposes``. A Care Partner client needs at least one scope and one purpose; an
    administrator without scopes is allowed ``system/*.cruds``.
    """
    if organization is not None and not _ORGANIZATION.fullmatch(organization):
        raise ClientError(f"--organization must be a reference like Organization/123, not {organization!r}")
    if not isinstance(jwks, dict) or not isinstance(jwks.get("keys"), list):
        raise ClientError('the JWKS must be a JSON object {"keys": [...]}')
    if keys_required and not jwks["keys"]:
        raise ClientError("the JWKS holds no key")
    for k in jwks["keys"]:
        if (problem := check_key(k)) is not None:
            raise ClientError(problem)
    kids = [k["kid"] for k in jwks["keys"]]
    if len(set(kids)) != len(kids):
        raise ClientError("two keys share a kid")
    scope_items = tuple(scope_list) or (ADMIN_DEFAULT_SCOPES if organization is None else ())
    if not scope_items:
        raise ClientError("a Care Partner client needs at least one --scope (e.g. system/Patient.rs)")
    if bad := sc.invalid(scope_items):
        raise ClientError(f"not a SMART system scope: {', '.join(bad)} (e.g. system/Patient.rs, system/*.read)")
    known = set(known_purposes)
    codes: list[str] = []
    for p in purposes:
        code = purpose_code(p)
        if code not in known:
            raise ClientError(f"{p!r} is not an ascmi-purpose code ({', '.join(sorted(known))})")
        codes.append(code)
    if organization is not None and not codes:
        raise ClientError("a Care Partner client needs at least one --purpose (e.g. TREAT)")
    public = {"keys": [{m: v for m, v in k.items()} for k in jwks["keys"]]}
    return Client(
        client_id=_new_client_id(),
        jwks=public,
        organization=organization,
        scopes=scope_items,
        purposes=tuple(dict.fromkeys(codes)),
        created=datetime.now(UTC).isoformat(timespec="seconds"),
    )


def _new_client_id() -> str:
    """128 random bits, URL-safe, never starting with '-' (it would read as an option on the command line:
    ``fhir-server clients disable -x…``)."""
    while (found := secrets.token_urlsafe(16)).startswith("-"):
        pass
    return found


_PURPOSE_SYSTEMS = ("urn:oid:2.16.840.1.113883.5.8", "http://terminology.hl7.org/CodeSystem/v3-ActReason")


def purpose_code(text: str) -> str:
    """``"urn:oid:2.16.840.1.113883.5.8#TREAT"``, ``"…/v3-ActReason#TREAT"`` and ``"TREAT"`` are one code;
    a local ascmi-purpose code travels as ``<system>#code`` or bare.

    >>> purpose_code("urn:oid:2.16.840.1.113883.5.8#TREAT"), purpose_code("HPAYMT")
    ('TREAT', 'HPAYMT')
    """
    if "#" in text:
        system, _, code = text.rpartition("#")
        if system in _PURPOSE_SYSTEMS or system.endswith("/CodeSystem/ascmi-purpose"):
            return code
        return text
    return text
