"""Canonical JSON for FHIR resources.

FHIR decimals carry their precision (``1.50`` is not ``1.5``), so bodies are parsed with ``Decimal`` for
numbers with a fraction or exponent and written back with their original text. Everything else goes through
orjson. The bytes written by :func:`dumps` are what the stores keep and what reads serve unchanged.

>>> dumps(loads(b'{"valueDecimal": 1.50}'))
b'{"valueDecimal":1.50}'
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import orjson


class FHIRDecimal(Decimal):
    """A Decimal that remembers the exact text it was parsed from (``1e3`` stays ``1e3``)."""

    __slots__ = ("text",)
    text: str

    def __new__(cls, text: str) -> FHIRDecimal:
        self = super().__new__(cls, text)
        self.text = text
        return self


_decoder = json.JSONDecoder(parse_float=FHIRDecimal)


class InvalidJSON(ValueError):
    """The request body is not JSON (or not UTF-8)."""


def _default(value: Any) -> Any:
    if isinstance(value, FHIRDecimal):
        return orjson.Fragment(value.text)
    if isinstance(value, Decimal):
        return orjson.Fragment(str(value))
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def loads(data: bytes | str) -> Any:
    """Parse JSON, keeping decimals exact. Raises :class:`InvalidJSON` with a readable message."""
    try:
        text = data.decode("utf-8") if isinstance(data, bytes | bytearray) else data
        return _decoder.decode(text)
    except UnicodeDecodeError as exc:
        raise InvalidJSON(f"body is not valid UTF-8: {exc.reason} at byte {exc.start}") from None
    except json.JSONDecodeError as exc:
        raise InvalidJSON(f"invalid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except RecursionError:
        raise InvalidJSON("invalid JSON: nested too deeply") from None


def dumps(value: Any, *, pretty: bool = False) -> bytes:
    """Serialise compactly (or indented with ``pretty``); decimals keep their text."""
    option = orjson.OPT_INDENT_2 if pretty else 0
    return orjson.dumps(value, default=_default, option=option)


def pretty(data: bytes) -> bytes:
    """Re-indent stored canonical bytes for ``_pretty=true``."""
    return dumps(loads(data), pretty=True)
