"""Sort keys and keyset paging.

Results are ordered by the ``_sort`` keys then by ``id`` (unique within a type; ``rtype, id`` for a system
search), so the order is total. A page ends with an
opaque cursor = base64url(JSON [sort key values..., id]) of its last row; the next page asks for rows strictly
after that tuple, so page 500 costs what page 1 costs, and rows inserted meanwhile never shift later pages.

>>> decode_cursor(encode_cursor(["2025", "c7"]), 2)
['2025', 'c7']
"""

from __future__ import annotations

import base64
import binascii
import json

from fhir_server.fhir.outcome import InvalidSearchParameter
from fhir_server.fhir.search.ast import SortKey
from fhir_server.store.sqlite.index import TABLES

TOP_TEXT = "\U0010ffff"
TOP_REAL = 1e308

# parameter type → (column sorted ascending, column sorted descending)
SORT_COLUMNS: dict[str, tuple[str, str]] = {
    "string": ("value", "value"),
    "token": ("code", "code"),
    "reference": ("ref_id", "ref_id"),
    "uri": ("uri", "uri"),
    "date": ("low", "high"),
    "number": ("low", "high"),
    "quantity": ("low", "high"),
}
_TEXT_TYPES = frozenset({"string", "token", "reference", "uri", "date", "special"})


def sort_expression(key: SortKey, alias: str) -> tuple[str, list[object]]:
    """SQL giving one resource's sort value for ``key``; resources without a value sort last."""
    if key.name == "_id":
        return f"{alias}.id", []
    if key.name == "_lastUpdated":
        return f"{alias}.last_updated", []
    table = TABLES[key.type][0]
    asc_col, desc_col = SORT_COLUMNS[key.type]
    agg, col = ("max", desc_col) if key.descending else ("min", asc_col)
    text = key.type in _TEXT_TYPES
    missing: object = ("" if text else -TOP_REAL) if key.descending else (TOP_TEXT if text else TOP_REAL)
    sql = (f"coalesce((SELECT {agg}(s.{col}) FROM {table} s WHERE s.rid = {alias}.rid AND s.param = ?), ?)")
    return sql, [key.name, missing]


def keyset_condition(columns: list[tuple[str, bool]], values: list[object]) -> tuple[str, list[object]]:
    """Rows strictly after ``values`` in the order of ``columns`` [(sql, descending)].

    One direction → a row-value comparison SQLite can answer with an index range: ``(r.rtype, r.id) > (?, ?)``.
    """
    if len({desc for _, desc in columns}) == 1:
        cols = ", ".join(c for c, _ in columns)
        marks = ", ".join("?" * len(columns))
        return f"({cols}) {'<' if columns[0][1] else '>'} ({marks})", list(values)
    ors, args = [], []
    for i, (col, desc) in enumerate(columns):
        terms = [f"{c} = ?" for c, _ in columns[:i]] + [f"{col} {'<' if desc else '>'} ?"]
        ors.append("(" + " AND ".join(terms) + ")")
        args += [*values[:i], values[i]]
    return "(" + " OR ".join(ors) + ")", args


def encode_cursor(values: list[object]) -> str:
    raw = json.dumps(values, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, width: int) -> list[object]:
    """Values of a cursor made by :func:`encode_cursor` for a query with ``width`` order columns."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        values = json.loads(raw)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        values = None
    if (not isinstance(values, list) or len(values) != width
            or not all(isinstance(v, str | int | float) for v in values)):
        raise InvalidSearchParameter("_cursor is not a cursor of this search (start again from the first page)")
    return values
