"""People who sign in to the Care Partner web page (issue #19): staff of a Care Partner Organization, or
administrators. Kept in the store as plain JSON documents (like clients), so every worker sees the same list.

A user is bound to exactly one Care Partner Organization (``None`` for an administrator); the access token a user
gets acts for that Organization, so every rule of ACCESS.md §B applies to staff exactly as to their
Organization's clients. Allowed scopes are SMART ``user/`` scopes (default ``user/*.cruds``: the consent gate and
the Care Partner write limits narrow what that means); allowed purposes default to ``TREAT``.

Passwords are hashed with the standard library's scrypt (RFC 7914) with a 16-byte random salt per user, compared
in constant time. Parameters n=2^14, r=8, p=5 are one of the OWASP Password Storage Cheat Sheet's equivalent
minimums (as strong as n=2^17, p=1, with 16 MiB of memory per check instead of 128 MiB, which matters when
several sign-ins run at once); they are stored in each hash, so they can be raised later. An unknown username
is checked against a dummy hash made with the same parameters, so it costs the same time as a wrong password (no
user enumeration by timing).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import cache
from typing import Any

from fhir_server.security import scopes as sc
from fhir_server.security.clients import purpose_code

USER_DEFAULT_SCOPES = ("user/*.cruds",)
USER_DEFAULT_PURPOSES = ("TREAT",)
MIN_PASSWORD = 8
MAX_PASSWORD = 256  # scrypt's cost does not grow with length, but a megabyte form field is not a password
_USERNAME = re.compile(r"[a-z0-9][a-z0-9._@+\-]{0,63}")
_ORGANIZATION = re.compile(r"Organization/[A-Za-z0-9\-.]{1,64}")
_SCRYPT = {"n": 2**14, "r": 8, "p": 5}
_KEY_LENGTH = 32


class UserError(ValueError):
    """A user record or password that cannot be accepted; the message says why (shown to the administrator)."""


def normalise_username(text: str) -> str:
    """Usernames are compared without case and surrounding blanks: ``" Ana.Lopez "`` → ``"ana.lopez"``."""
    return text.strip().lower()


def valid_username(name: str) -> bool:
    """Lower-case letters, digits and ``. _ @ + -`` (an e-mail address works), at most 64.

    >>> valid_username("ana.lopez@clinic.example"), valid_username("a b"), valid_username("")
    (True, False, False)
    """
    return _USERNAME.fullmatch(name) is not None


def hash_password(password: str, salt: bytes | None = None) -> str:
    """``scrypt$<n>$<r>$<p>$<salt b64>$<hash b64>`` (parameters stored, so they can be raised later)."""
    salt = salt if salt is not None else secrets.token_bytes(16)
    n, r, p = _SCRYPT["n"], _SCRYPT["r"], _SCRYPT["p"]
    digest = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=n, r=r, p=p, maxmem=64 * 1024 * 1024,
                            dklen=_KEY_LENGTH)
    return f"scrypt${n}${r}${p}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, stored: str) -> bool:
    """Constant-time comparison of ``password`` against a stored hash; a malformed hash never matches."""
    try:
        scheme, n, r, p, salt, expected = stored.split("$")
        if scheme != "scrypt":
            return False
        digest = hashlib.scrypt(password.encode("utf-8"), salt=_unb64(salt), n=int(n), r=int(r), p=int(p),
                                maxmem=64 * 1024 * 1024, dklen=_KEY_LENGTH)
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(digest, _unb64(expected))


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@cache
def dummy_hash() -> str:
    """Checked when the username is unknown, so an unknown name costs what a wrong password costs (made on first
    use: importing this module costs nothing)."""
    return hash_password(secrets.token_urlsafe(16))


def check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise UserError(f"the password needs at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise UserError(f"the password may have at most {MAX_PASSWORD} characters")


@dataclass(frozen=True)
class User:
    username: str
    organization: str | None
    password_hash: str = field(repr=False)
    display: str = ""
    scopes: tuple[str, ...] = USER_DEFAULT_SCOPES
    purposes: tuple[str, ...] = USER_DEFAULT_PURPOSES
    active: bool = True
    created: str = ""
    allowed: sc.Scopes = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "allowed", sc.parse(self.scopes, "user"))

    @property
    def is_administrator(self) -> bool:
        return self.organization is None

    @property
    def purpose(self) -> str | None:
        """The purpose of use of this person's tokens: the first allowed one (TREAT unless the record says)."""
        return self.purposes[0] if self.purposes else None

    def public(self) -> dict[str, Any]:
        """What an administrator (CLI, admin API) is shown: everything but the password hash."""
        return {"username": self.username, "organization": self.organization, "display": self.display,
                "scopes": list(self.scopes), "purposes": list(self.purposes), "active": self.active,
                "created": self.created}

    def to_json(self) -> dict[str, Any]:
        return {**self.public(), "password_hash": self.password_hash}

    def with_password(self, password: str) -> User:
        check_password(password)
        return replace(self, password_hash=hash_password(password))

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> User:
        return cls(
            username=str(doc["username"]),
            organization=doc.get("organization"),
            password_hash=str(doc.get("password_hash") or ""),
            display=str(doc.get("display") or ""),
            scopes=tuple(doc.get("scopes") or ()),
            purposes=tuple(doc.get("purposes") or ()),
            active=bool(doc.get("active", True)),
            created=str(doc.get("created") or ""),
        )


def new_user(
    username: str,
    password: str,
    *,
    organization: str | None,
    display: str = "",
    scope_list: Iterable[str] = (),
    purposes: Iterable[str] = (),
    known_purposes: Iterable[str] = (),
) -> User:
    """Check a new user and build it (password hashed here; the clear text goes no further)."""
    name = normalise_username(username)
    if not valid_username(name):
        raise UserError(f"{username!r} is not a usable username: letters, digits and . _ @ + - (at most 64)")
    if organization is not None and not _ORGANIZATION.fullmatch(organization):
        raise UserError(f"--organization must be a reference like Organization/123, not {organization!r}")
    scope_items = tuple(s for item in scope_list for s in item.split()) or USER_DEFAULT_SCOPES
    if bad := sc.invalid(scope_items, "user"):
        raise UserError(f"not a SMART user scope: {', '.join(bad)} (e.g. user/Patient.rs, user/*.read)")
    known = set(known_purposes)
    codes = [purpose_code(p) for p in purposes] or list(USER_DEFAULT_PURPOSES)
    for code in codes:
        if known and code not in known:
            raise UserError(f"{code!r} is not an ascmi-purpose code ({', '.join(sorted(known))})")
    check_password(password)
    return User(
        username=name,
        organization=organization,
        password_hash=hash_password(password),
        display=display.strip(),
        scopes=scope_items,
        purposes=tuple(dict.fromkeys(codes)),
        created=datetime.now(UTC).isoformat(timespec="seconds"),
    )
