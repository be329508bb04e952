"""Keyset paging: sort specs, opaque cursors and the "after this row" filter. Pure functions.

A cursor is the sort-key values of the last row of a page (the last one is always the unique ``_id``), so the
next page is one index range scan from there: page 500 costs what page 1 costs, and rows inserted meanwhile
neither repeat nor shift the pages. Missing sort values (``null``) sort first ascending and last descending,
as MongoDB orders them; :func:`after` spells that out because ``$gt``/``$lt`` never match ``null``.

>>> after([("_lu", -1), ("_id", -1)], ["2026-01-01T00:00:00.000Z", "Patient/1/0000000001"])["$or"][0]
{'_lu': {'$lt': '2026-01-01T00:00:00.000Z'}}
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from fhir_server.fhir.outcome import InvalidSearchParameter
from fhir_server.fhir.search.ast import SortKey
from fhir_server.store.mongo import names as n

Spec = list[tuple[str, int]]  # (field, 1 | -1)

_SPECIAL = {"_id": n.ID, "_lastUpdated": n.LU}


TOP_TEXT = "\U0010ffff"
TOP_REAL = 1e308
_NUMERIC = frozenset({"number", "quantity"})


def sort_spec(keys: tuple[SortKey, ...]) -> tuple[Spec, dict[str, Any]]:
    """``_sort=-date`` → ([("_k0", -1), ("_id", 1)], {"_k0": {"$ifNull": ["$_sd.date", ""]}}).

    The spec always ends with the unique ``_id``. Parameter keys are computed fields (``$addFields``) so that
    resources without a value sort last in both directions, as in the SQLite store.
    """
    spec: Spec = []
    computed: dict[str, Any] = {}
    for i, key in enumerate(keys):
        direction = -1 if key.descending else 1
        field = _SPECIAL.get(key.name)
        if field is None:
            field = f"_k{i}"
            source = f"${n.SORT_DESC if key.descending else n.SORT_ASC}.{key.name}"
            numeric = key.type in _NUMERIC
            missing = (-TOP_REAL if numeric else "") if key.descending else (TOP_REAL if numeric else TOP_TEXT)
            computed[field] = {"$ifNull": [source, missing]}
        spec.append((field, direction))
        if field == n.ID:
            return spec, computed
    return [*spec, (n.ID, 1)], computed


def encode_cursor(values: list[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(values, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_cursor(cursor: str, spec: Spec) -> list[Any]:
    try:
        values = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, binascii.Error):
        values = None
    if not isinstance(values, list) or len(values) != len(spec) or not all(
            v is None or isinstance(v, str | int | float) for v in values):
        raise InvalidSearchParameter("_cursor is not a cursor of this search (start again from the first page)",
                                     ["_cursor"])
    return values


def cursor_values(doc: dict[str, Any], spec: Spec) -> list[Any]:
    """The sort-key values of ``doc`` (dotted fields walk subdocuments)."""
    out = []
    for field, _ in spec:
        value: Any = doc
        for part in field.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        out.append(value)
    return out


def after(spec: Spec, values: list[Any]) -> dict[str, Any]:
    """Rows strictly after ``values`` in ``spec`` order (the unique last key makes it strict)."""
    (field, direction), *rest = spec
    value, *rest_values = values
    tail = after(rest, rest_values) if rest else None
    same: dict[str, Any] = {field: value}
    if tail is not None:
        same = {"$and": [same, tail]}
    branches: list[dict[str, Any]] = []
    if value is None:
        if direction == 1:
            branches.append({field: {"$ne": None}})
    else:
        branches.append({field: {"$gt" if direction == 1 else "$lt": value}})
        if direction == -1:
            branches.append({field: None})
    if tail is not None:
        branches.append(same)
    if not branches:  # only a null in the last key could get here, and the last key is the unique _id
        return {n.ID: {"$in": []}}
    return branches[0] if len(branches) == 1 else {"$or": branches}
