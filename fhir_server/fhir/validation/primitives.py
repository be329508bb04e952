"""FHIR R4 primitive types: what JSON value each one accepts and the lexical rule it must follow.

The regular expressions are the normative ones from https://hl7.org/fhir/R4/datatypes.html (the snapshot
``.value`` elements carry the same ones, but several R4 copies are known to be wrong, e.g. dateTime), plus the
checks the regex cannot express: calendar validity of dates and the 32-bit range of integers.

>>> check_primitive("date", "2024-02-30")
'2024-02-30 is not a valid date: day is out of range for month'
>>> check_primitive("positiveInt", 0) is not None
True
"""

from __future__ import annotations

import datetime
import math
import re
from decimal import Decimal
from typing import Any

_YEAR = r"([0-9]([0-9]([0-9][1-9]|[1-9]0)|[1-9]00)|[1-9]000)"
_TZ = r"(Z|(\+|-)((0[0-9]|1[0-3]):[0-5][0-9]|14:00))"
_TIME = r"([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\.[0-9]+)?"

REGEX: dict[str, re.Pattern[str]] = {
    name: re.compile(pattern)
    for name, pattern in {
        "string": r"[ \r\n\t\S]+",
        "markdown": r"\s*(\S|\s)*",
        "code": r"[^\s]+(\s[^\s]+)*",
        "id": r"[A-Za-z0-9\-\.]{1,64}",
        "uri": r"\S*",
        "url": r"\S*",
        "canonical": r"\S*",
        "oid": r"urn:oid:[0-2](\.(0|[1-9][0-9]*))+",
        "uuid": r"urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
        "base64Binary": r"(\s*([0-9a-zA-Z\+/=]){4}\s*)+",
        "date": _YEAR + r"(-(0[1-9]|1[0-2])(-(0[1-9]|[1-2][0-9]|3[0-1]))?)?",
        "dateTime": _YEAR + r"(-(0[1-9]|1[0-2])(-(0[1-9]|[1-2][0-9]|3[0-1])(T" + _TIME + _TZ + r")?)?)?",
        "instant": _YEAR + r"-(0[1-9]|1[0-2])-(0[1-9]|[1-2][0-9]|3[0-1])T" + _TIME + _TZ,
        "time": _TIME,
        "decimal": r"-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?",
        "xhtml": r"\s*<div[\s>](.|\s)*</div>\s*|\s*<div\s*/>\s*",
    }.items()
}

INTEGER_RANGE: dict[str, tuple[int, int]] = {
    "integer": (-(2**31), 2**31 - 1),
    "unsignedInt": (0, 2**31 - 1),
    "positiveInt": (1, 2**31 - 1),
}
STRING_TYPES = frozenset(REGEX) - {"decimal"}
PRIMITIVES = STRING_TYPES | frozenset(INTEGER_RANGE) | {"boolean", "decimal"}
MAX_STRING = 1024 * 1024


def json_kind(value: Any) -> str:
    """The JSON kind of a parsed value, for messages: ``"string"``, ``"number"``, ``"object"``..."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float | Decimal):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "array"
    return "null"


def _calendar(type_code: str, value: str) -> str | None:
    """The regexes allow 2024-02-30; a real calendar does not."""
    if len(value) < 10 or type_code not in ("date", "dateTime", "instant"):
        return None
    try:
        datetime.date(int(value[0:4]), int(value[5:7]), int(value[8:10]))
    except ValueError as exc:
        return f"{value} is not a valid {type_code}: {exc}"
    return None


def check_primitive(type_code: str, value: Any) -> str | None:
    """None when ``value`` (as parsed JSON) is a valid ``type_code``, else a sentence saying why not."""
    if type_code == "boolean":
        return None if isinstance(value, bool) else f"expected a JSON boolean, found {json_kind(value)}"
    if type_code in INTEGER_RANGE:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float | Decimal) and not isinstance(value, bool) and value == int(value):
                return f"{type_code} must be written without a fraction or exponent, found {value}"
            return f"expected a JSON integer for {type_code}, found {json_kind(value)}"
        low, high = INTEGER_RANGE[type_code]
        if not low <= value <= high:
            return f"{value} is out of range for {type_code} ({low}..{high})"
        return None
    if type_code == "decimal":
        if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
            return f"expected a JSON number for decimal, found {json_kind(value)}"
        if isinstance(value, float) and not math.isfinite(value):
            return "decimal must be a finite number"
        if isinstance(value, Decimal) and not value.is_finite():
            return "decimal must be a finite number"
        return None
    if not isinstance(value, str):
        return f"expected a JSON string for {type_code}, found {json_kind(value)}"
    if len(value) > MAX_STRING:
        return f"{type_code} is longer than {MAX_STRING} characters"
    pattern = REGEX.get(type_code)
    if pattern is not None and not pattern.fullmatch(value):
        if value == "":
            return f"{type_code} must not be empty (leave the element out instead)"
        if value != value.strip() and type_code not in ("string", "markdown", "xhtml"):
            return f"{value!r} is not a valid {type_code}: leading or trailing whitespace"
        return f"{value!r} is not a valid {type_code}"
    if type_code in ("uri", "url", "canonical"):
        # a uri that says it is a uuid or an oid must be one (datatypes.html#uri, as the HL7 validator checks)
        if value.startswith("urn:uuid:") and not REGEX["uuid"].fullmatch(value):
            return f"{value!r} is not a valid uuid: UUIDs must be valid and lowercase"
        if value.startswith("urn:oid:") and not REGEX["oid"].fullmatch(value):
            return f"{value!r} is not a valid oid"
    return _calendar(type_code, value)
