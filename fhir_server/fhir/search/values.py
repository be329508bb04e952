"""Parsing of one search value by parameter type: prefixes, partial dates, numbers, tokens, escapes.

Every function raises :class:`InvalidSearchParameter` naming the parameter; nothing here touches a store.

>>> parse_date("birthdate", "ge2000")
DateValue(prefix='ge', low='2000-01-01T00:00:00.000Z', high='2000-12-31T23:59:59.999Z')
>>> parse_token("code", "http://loinc.org|8867-4")
TokenValue(system='http://loinc.org', code='8867-4')
>>> split_escaped("a\\\\,b,c", ",")
['a\\\\,b', 'c']
"""

from __future__ import annotations

import re
from collections.abc import Callable

from fhir_server.fhir.outcome import InvalidSearchParameter
from fhir_server.fhir.search.ast import (
    NO_SYSTEM,
    DateValue,
    NumberValue,
    QuantityValue,
    ReferenceValue,
    StringValue,
    TokenValue,
    UriValue,
    Value,
)
from fhir_server.fhir.search.normalize import date_bounds, fold, number_bounds, split_reference, to_decimal

PREFIXES = frozenset({"eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap"})
_PREFIX_RE = re.compile(r"([a-z]{2})(?=[0-9+\-.])")
_ESCAPES = {",": ",", "$": "$", "|": "|", "\\": "\\"}
_ID_RE = re.compile(r"[A-Za-z0-9\-.]{1,64}")


def split_escaped(text: str, sep: str) -> list[str]:
    """Split on ``sep`` not preceded by a backslash escape; escapes are kept for :func:`unescape`."""
    parts, current, i = [], [], 0
    while i < len(text):
        c = text[i]
        if c == "\\" and i + 1 < len(text):
            current.append(text[i : i + 2])
            i += 2
            continue
        if c == sep:
            parts.append("".join(current))
            current = []
        else:
            current.append(c)
        i += 1
    parts.append("".join(current))
    return parts


def unescape(text: str) -> str:
    """``a\\,b`` → ``a,b``; a backslash before any other character stays as typed."""
    if "\\" not in text:
        return text
    out, i = [], 0
    while i < len(text):
        if text[i] == "\\" and i + 1 < len(text) and text[i + 1] in _ESCAPES:
            out.append(text[i + 1])
            i += 2
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def _bad(name: str, message: str) -> InvalidSearchParameter:
    return InvalidSearchParameter(f"Search parameter '{name}': {message}")


def split_prefix(name: str, text: str) -> tuple[str, str]:
    """``ge2000`` → ('ge', '2000'); no prefix → ('eq', text); an unknown prefix is an error."""
    m = _PREFIX_RE.match(text)
    if m is None:
        return "eq", text
    if m[1] not in PREFIXES:
        raise _bad(name, f"unknown prefix '{m[1]}' in '{text}' (expected one of {', '.join(sorted(PREFIXES))})")
    return m[1], text[2:]


def parse_date(name: str, text: str) -> DateValue:
    prefix, rest = split_prefix(name, unescape(text))
    bounds = date_bounds(rest)
    if bounds is None:
        raise _bad(name, f"'{text}' is not a valid date (expected YYYY, YYYY-MM, YYYY-MM-DD or a dateTime)")
    return DateValue(prefix, *bounds)


def parse_number(name: str, text: str) -> NumberValue:
    prefix, rest = split_prefix(name, unescape(text))
    d = to_decimal(rest) if re.fullmatch(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?", rest) else None
    if d is None:
        raise _bad(name, f"'{text}' is not a number")
    low, high = number_bounds(d)
    return NumberValue(prefix, low, high, float(d))


def parse_quantity(name: str, text: str) -> QuantityValue:
    parts = split_escaped(text, "|")
    if len(parts) not in (1, 3):
        raise _bad(name, f"'{text}' is not a quantity (expected [prefix]number[|system|code])")
    n = parse_number(name, parts[0])
    system = unescape(parts[1]) or None if len(parts) == 3 else None
    code = unescape(parts[2]) or None if len(parts) == 3 else None
    return QuantityValue(n.prefix, n.low, n.high, n.value, system, code)


def parse_token(name: str, text: str) -> TokenValue:
    parts = split_escaped(text, "|")
    if len(parts) == 1:
        return TokenValue(None, unescape(parts[0]))
    if len(parts) == 2:
        system, code = unescape(parts[0]), unescape(parts[1])
        if not system and not code:
            raise _bad(name, "'|' alone names neither a system nor a code")
        return TokenValue(system or NO_SYSTEM, code or None)
    raise _bad(name, f"'{text}' has more than one unescaped '|' (escape it as '\\|')")


def parse_string(name: str, text: str) -> StringValue:
    raw = unescape(text)
    return StringValue(raw, fold(raw))


def parse_uri(name: str, text: str) -> UriValue:
    return UriValue(unescape(text))


def parse_reference(name: str, text: str, target_type: str | None = None,
                    targets: tuple[str, ...] = ()) -> ReferenceValue:
    """``Patient/1``, ``1`` (type from the ``:Type`` modifier or the only target), absolute or canonical URL."""
    raw = unescape(text)
    if _ID_RE.fullmatch(raw):
        only = target_type or (targets[0] if len(targets) == 1 else None)
        return ReferenceValue(only, raw)
    rtype, rid, url = split_reference(raw)
    if rtype is None and (url is None or ("://" not in raw and not raw.startswith("urn:"))):
        raise _bad(name, f"'{text}' is not a reference (expected [Type/]id or a URL)")
    if target_type and rtype and rtype != target_type:
        raise _bad(name, f"'{text}' is not a {target_type} reference")
    if rtype is not None and "://" not in raw:
        url = None
    return ReferenceValue(rtype, rid, url)


def parse_missing(name: str, text: str) -> bool:
    if text not in ("true", "false"):
        raise _bad(name, f":missing takes true or false, not '{text}'")
    return text == "true"


Parser = Callable[[str, str], Value]

VALUE_PARSERS: dict[str, Parser] = {
    "date": parse_date,
    "number": parse_number,
    "quantity": parse_quantity,
    "token": parse_token,
    "string": parse_string,
    "uri": parse_uri,
    "reference": parse_reference,
}
