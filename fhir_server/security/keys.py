"""Keys in the forms people have: a PEM file made with ``openssl`` becomes a registered JWK (its ``kid`` the RFC 7638
thumbprint), and a private PEM signs a client assertion, so a newcomer needs no JOSE tooling of their own.

>>> from cryptography.hazmat.primitives.asymmetric import ec
>>> from cryptography.hazmat.primitives import serialization as s
>>> pem = ec.generate_private_key(ec.SECP384R1()).public_key().public_bytes(
...     s.Encoding.PEM, s.PublicFormat.SubjectPublicKeyInfo)
>>> jwk = public_jwk(pem); (jwk["kty"], jwk["crv"], jwk["alg"], len(jwk["kid"]))
('EC', 'P-384', 'ES384', 43)
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
_THUMBPRINT_MEMBERS = {"RSA": ("e", "kty", "n"), "EC": ("crv", "kty", "x", "y")}


def thumbprint(jwk: dict[str, Any]) -> str:
    """RFC 7638 JWK thumbprint (SHA-256, base64url): a stable ``kid`` for a key."""
    members = {m: jwk[m] for m in _THUMBPRINT_MEMBERS[jwk["kty"]]}
    digest = hashlib.sha256(json.dumps(members, separators=(",", ":"), sort_keys=True).encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _jwk_of(public: Any) -> dict[str, Any]:
    if isinstance(public, rsa.RSAPublicKey):
        jwk: dict[str, Any] = jwt.algorithms.RSAAlgorithm.to_jwk(public, as_dict=True)
        jwk["alg"] = "RS384"
    elif isinstance(public, ec.EllipticCurvePublicKey):
        jwk = jwt.algorithms.ECAlgorithm.to_jwk(public, as_dict=True)
        jwk["alg"] = "ES384"
    else:
        raise ValueError("only RSA and EC keys are supported")
    jwk["kid"] = thumbprint(jwk)
    jwk["use"] = "sig"
    return jwk


def public_jwk(pem: bytes) -> dict[str, Any]:
    """A PEM public key (or a private key, whose public half is taken) → its public JWK."""
    if b"PRIVATE KEY" in pem:
        return _jwk_of(serialization.load_pem_private_key(pem, password=None).public_key())
    return _jwk_of(serialization.load_pem_public_key(pem))


def client_assertion(private_pem: bytes, client_id: str, token_url: str, purpose: str | None = None,
                     lifetime: int = 240) -> str:
    """An RFC 7523 client assertion signed with the private key (RS384 or ES384 by key type, ``kid`` =
    thumbprint), with the HL7 B2B ``purpose_of_use`` when one is given."""
    key = serialization.load_pem_private_key(private_pem, password=None)
    jwk = _jwk_of(key.public_key())
    now = int(time.time())
    claims: dict[str, Any] = {"iss": client_id, "sub": client_id, "aud": token_url, "iat": now,
                              "exp": now + lifetime, "jti": secrets.token_urlsafe(16)}
    if purpose:
        claims["extensions"] = {"hl7-b2b": {"version": "1", "purpose_of_use": [purpose]}}
    return jwt.encode(claims, key, algorithm=jwk["alg"], headers={"kid": jwk["kid"]})  # type: ignore[arg-type]
