"""Primitive formats and ranges (datatypes.html#primitive)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from fhir_server.fhir.jsonio import FHIRDecimal
from fhir_server.fhir.validation.primitives import check_primitive

CASES: list[tuple[str, Any, bool]] = [
    ("boolean", True, True),
    ("boolean", "true", False),
    ("integer", 5, True),
    ("integer", 2**31, False),
    ("integer", True, False),
    ("integer", FHIRDecimal("1.0"), False),
    ("positiveInt", 1, True),
    ("positiveInt", 0, False),
    ("unsignedInt", 0, True),
    ("unsignedInt", -1, False),
    ("decimal", FHIRDecimal("1.50"), True),
    ("decimal", 3, True),
    ("decimal", "1.5", False),
    ("decimal", Decimal("NaN"), False),
    ("string", "x", True),
    ("string", "", False),
    ("string", 1, False),
    ("code", "active", True),
    ("code", " active", False),
    ("code", "a  b", False),
    ("id", "a-b.c", True),
    ("id", "a_b", False),
    ("id", "x" * 65, False),
    ("date", "2024", True),
    ("date", "2024-02", True),
    ("date", "2024-02-29", True),
    ("date", "2023-02-29", False),
    ("date", "2024-1-01", False),
    ("dateTime", "2024-05-01T10:00:00Z", True),
    ("dateTime", "2024-05-01T10:00:00+14:00", True),
    ("dateTime", "2024-05-01T10:00Z", False),
    ("dateTime", "2024-05-01T10:00:00", False),
    ("instant", "2024-05-01T10:00:00.123Z", True),
    ("instant", "2024-05-01", False),
    ("time", "23:59:60", True),
    ("time", "24:00:00", False),
    ("uri", "urn:x", True),
    ("uri", "a b", False),
    ("uri", "urn:uuid:c757873d-ec9a-4326-a141-556f43239520", True),
    ("uri", "urn:uuid:c757873d-ec9a-4326-a141-556f43239520asdf", False),
    ("uri", "urn:uuid:C757873D-EC9A-4326-A141-556F43239520", False),
    ("canonical", "urn:oid:1.2.3", True),
    ("url", "urn:oid:1.2.x", False),
    ("oid", "urn:oid:1.2.3", True),
    ("oid", "1.2.3", False),
    ("uuid", "urn:uuid:6f1c9b02-3c5e-4a7e-9e62-8a4f3b8e0f11", True),
    ("uuid", "6f1c9b02", False),
    ("base64Binary", "aGVsbG8=", True),
    ("base64Binary", "a", False),
    ("xhtml", '<div xmlns="http://www.w3.org/1999/xhtml">x</div>', True),
    ("xhtml", "<p>x</p>", False),
]


@pytest.mark.parametrize(("type_code", "value", "valid"), CASES, ids=[f"{c[0]}-{c[1]!r:.20}" for c in CASES])
def test_primitive_value_is_checked_against_its_type(type_code: str, value: Any, valid: bool) -> None:
    problem = check_primitive(type_code, value)
    assert (problem is None) is valid, problem
