"""The two refusals of a FHIR request (401 ``login``, 403 ``forbidden``) and the token endpoint's RFC 6749 errors.

Messages say what to do, never which check of a token or an assertion failed (no oracle for an attacker).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from fhir_server.fhir.outcome import FHIRError

BEARER_CHALLENGE = 'Bearer realm="fhir"'


class Unauthorized(FHIRError):
    """401: no usable bearer token (missing, malformed, expired, unknown, or its client disabled)."""

    def __init__(self, diagnostics: str = "this request needs a valid bearer token (Authorization: Bearer <token>)"
                 "; get one from the token endpoint named in /fhir/.well-known/smart-configuration") -> None:
        FHIRError.__init__(self, 401, "login", diagnostics, headers={"WWW-Authenticate": BEARER_CHALLENGE})


class Forbidden(FHIRError):
    """403: the caller is known but may not do this (scope, administrator-only, Care Partner write limits)."""

    def __init__(self, diagnostics: str) -> None:
        FHIRError.__init__(self, 403, "forbidden", diagnostics)


@dataclass
class TokenError(Exception):
    """An RFC 6749 §5.2 error answer of the token endpoint (``status`` 400 or 401; 429 when throttled)."""

    error: str
    description: str
    status: int = 400
    headers: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        Exception.__init__(self, f"{self.error}: {self.description}")

    def body(self) -> dict[str, str]:
        return {"error": self.error, "error_description": self.description}


def invalid_client() -> TokenError:
    """The one answer for every failure of an assertion or its client (RFC 6749 §5.2, RFC 7523 §3.2)."""
    return TokenError("invalid_client", "client authentication failed", 401)
