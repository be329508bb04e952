"""SMART system (and user) scopes, v1 and v2, as one shape: ``{resource type or "*": letters in "cruds" order}``.

A client of SMART Backend Services asks for ``system/`` scopes; a person signed in through the Care Partner web
page gets ``user/`` scopes (SMART App Launch, "user-level scopes"). Both have the same grammar and become the
same map on the :class:`~fhir_server.security.caller.Caller`; ``kind`` says which prefix is read and written.

v2: ``system/<Type|*>.<c r u d s, in that order>``; v1: ``system/<Type|*>.read|write|*`` where ``read`` = ``rs``,
``write`` = ``cud`` and ``*`` = ``cruds`` (SMART App Launch 2.x, "Scopes for requesting FHIR resources").
Granted scopes are requested ∩ allowed, per type and per letter: ``system/*.rs`` asked of a client allowed
``system/Patient.rs`` grants ``system/Patient.rs`` — scopes only ever narrow.

>>> grant(parse("system/*.rs"), parse("system/Patient.rs system/Consent.c"))
{'Patient': 'rs'}
>>> grant(parse("system/Observation.read"), parse("system/*.cruds"))
{'Observation': 'rs'}
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from fhir_server.security.caller import INTERACTION_LETTERS

Scopes = dict[str, str]

_V1 = {"read": "rs", "write": "cud", "*": INTERACTION_LETTERS}
_SCOPE = {kind: re.compile(kind + r"/(\*|[A-Z][A-Za-z]{0,63})\.([a-z*]+)") for kind in ("system", "user")}


def letters(text: str) -> str | None:
    """``"rs"`` → ``"rs"``; ``"read"`` → ``"rs"``; ``"sr"`` (out of order) or ``"x"`` → None.

    >>> letters("cruds"), letters("write"), letters("sr"), letters("")
    ('cruds', 'cud', None, None)
    """
    if text in _V1:
        return _V1[text]
    if not text or any(ch not in INTERACTION_LETTERS for ch in text):
        return None
    ordered = "".join(ch for ch in INTERACTION_LETTERS if ch in text)
    return text if ordered == text else None


def parse_one(scope: str, kind: str = "system") -> tuple[str, str] | None:
    """``"system/Patient.rs"`` → ``("Patient", "rs")``; anything that is not a scope of ``kind`` → None.

    >>> parse_one("system/Patient.read"), parse_one("patient/Patient.rs"), parse_one("system/Patient.rs?x=1")
    (('Patient', 'rs'), None, None)
    >>> parse_one("user/Consent.cruds", "user"), parse_one("user/Consent.cruds")
    (('Consent', 'cruds'), None)
    """
    m = _SCOPE[kind].fullmatch(scope)
    if m is None:
        return None
    found = letters(m.group(2))
    return None if found is None else (m.group(1), found)


def _merge(into: Scopes, rtype: str, more: str) -> None:
    have = into.get(rtype, "")
    into[rtype] = "".join(ch for ch in INTERACTION_LETTERS if ch in have or ch in more)


def parse(text: str | Iterable[str], kind: str = "system") -> Scopes:
    """A space-separated scope string (or a list) → the merged map; what is not a scope of ``kind`` is ignored
    (``openid``, ``launch/patient`` … as well as the other kind)."""
    items = text.split() if isinstance(text, str) else list(text)
    out: Scopes = {}
    for item in items:
        one = parse_one(item, kind)
        if one is not None:
            _merge(out, *one)
    return out


def invalid(items: Iterable[str], kind: str = "system") -> list[str]:
    """The items that are not valid scopes of ``kind`` (for registration, where every scope must be valid)."""
    return [s for s in items if parse_one(s, kind) is None]


def _common(a: str, b: str) -> str:
    return "".join(ch for ch in a if ch in b)


def grant(requested: Scopes, allowed: Scopes) -> Scopes:
    """Per type and letter, what was asked for and is allowed; a type left with no letter is dropped."""
    out: Scopes = {}
    for rtype, asked in requested.items():
        if rtype == "*":
            for atype, permitted in allowed.items():
                if found := _common(asked, permitted):
                    _merge(out, atype, found)
        else:
            permitted = allowed.get(rtype, "") + allowed.get("*", "")
            if found := _common(asked, permitted):
                _merge(out, rtype, found)
    wildcard = out.get("*", "")
    return {t: v for t, v in out.items() if t == "*" or _common(v, wildcard) != v}


def format_scopes(scopes: Scopes, kind: str = "system") -> str:
    """The map as v2 scope text, ``*`` first then types in order.

    >>> format_scopes({"Patient": "rs", "*": "r"}), format_scopes({"Consent": "c"}, "user")
    ('system/*.r system/Patient.rs', 'user/Consent.c')
    """
    order = sorted(scopes, key=lambda t: (t != "*", t))
    return " ".join(f"{kind}/{t}.{scopes[t]}" for t in order)
