"""SearchQuery AST → MongoDB filter documents. Pure: plain data in, plain data out, no database.

One *element condition* function per parameter type, dispatched by :data:`ELEMENT`: it describes what one
index subdocument must hold to match one value (``TokenValue(None, "active")`` → ``{"c": "active"}``).
:func:`compile_filter` wraps the conditions in ``$elemMatch`` on that type's ``_ix`` array (so the parameter
code and the value must sit in the same subdocument — the fixed shape makes this one multikey index lookup),
ORs the values, and applies ``:missing`` / ``:not``. Chains, ``_has`` and ``_list`` need the ids of other
resources first; the search runner resolves those sub-queries and passes them in as :class:`Resolved`.

>>> compile_filter(Filter("status", "token", (TokenValue(None, "active"),)), {})
{'_ix.token': {'$elemMatch': {'p': 'status', 'c': 'active'}}}
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from fhir_server.fhir.outcome import InvalidSearchParameter
from fhir_server.fhir.search.ast import (
    NO_SYSTEM,
    CompositeValue,
    DateValue,
    Filter,
    Has,
    NumberValue,
    QuantityValue,
    ReferenceValue,
    SearchQuery,
    StringValue,
    TokenValue,
    UriValue,
    Value,
)
from fhir_server.fhir.search.extract import MAX_STRING
from fhir_server.fhir.search.normalize import uri_ancestors
from fhir_server.store.mongo import names as n

Doc = dict[str, Any]
# Sub-query results: chain / _has / _list node → the (type, id) pairs it matched; token :in / :below… → the
# (system, code) pairs of the ValueSet expansion or the code hierarchy.
Resolved = Mapping[Filter | Has, list[tuple[Any, Any]]]
MATCH_NOTHING: Doc = {n.ID: {"$in": []}}
_INSTANT = "%Y-%m-%dT%H:%M:%S.%fZ"


# --- dates, numbers, quantities: ranges --------------------------------------------------------------------


def _cond(*terms: tuple[str, str, Any]) -> Doc:
    """``("lo", "$gte", 1), ("lo", "$lt", 2)`` → ``{"lo": {"$gte": 1, "$lt": 2}}``: one field, two operators."""
    out: Doc = {}
    for field, op, value in terms:
        out.setdefault(field, {})[op] = value
    return out


# prefix → [(stored bound, operator, search bound)], ANDed; "ne" is the negation of "eq". The same tables as
# the SQLite store (R4 search.html §3.1.1.4): dates compare inclusive [lo, hi] instants; numbers and quantities
# compare [lo, hi) ranges from their significant digits.
Ops = dict[str, list[tuple[str, str, str]]]
DATE_OPS: Ops = {
    "eq": [("lo", "$gte", "low"), ("hi", "$lte", "high")],
    "gt": [("hi", "$gt", "high")],
    "lt": [("lo", "$lt", "low")],
    "ge": [("hi", "$gte", "low")],
    "le": [("lo", "$lte", "high")],
    "sa": [("lo", "$gt", "high")],
    "eb": [("hi", "$lt", "low")],
    "ap": [("lo", "$lte", "ap_high"), ("hi", "$gte", "ap_low")],
}
NUMBER_OPS: Ops = {
    "eq": [("lo", "$gte", "low"), ("hi", "$lte", "high")],
    "gt": [("hi", "$gt", "high")],
    "lt": [("lo", "$lt", "low")],
    "ge": [("hi", "$gt", "low")],
    "le": [("lo", "$lt", "high")],
    "sa": [("lo", "$gte", "high")],
    "eb": [("hi", "$lte", "low")],
    "ap": [("lo", "$lt", "ap_high"), ("hi", "$gt", "ap_low")],
}
_NEGATE = {"$gte": "$lt", "$lte": "$gt", "$gt": "$lte", "$lt": "$gte"}


def _range_condition(table: Ops, prefix: str, bounds: dict[str, Any], lo: str, hi: str) -> Doc:
    fields = {"lo": lo, "hi": hi}
    if prefix == "ne":  # not contained: either end sticks out
        return {"$or": [_cond((fields[f], _NEGATE[op], bounds[b])) for f, op, b in table["eq"]]}
    return _cond(*((fields[f], op, bounds[b]) for f, op, b in table[prefix]))


def date_bounds(v: DateValue, now: datetime | None = None) -> dict[str, str]:
    """Search bounds; ``ap`` widens the value by 10 % of its distance from now (as the SQLite store does)."""
    bounds = {"low": v.low, "high": v.high, "ap_low": v.low, "ap_high": v.high}
    if v.prefix == "ap":
        now = now or datetime.now(UTC)
        low, high = (datetime.strptime(x, _INSTANT).replace(tzinfo=UTC) for x in (v.low, v.high))
        gap = abs(now - low) * 0.1
        try:
            bounds["ap_low"] = (low - gap).strftime("%Y-%m-%dT%H:%M:%S.000Z")
        except OverflowError:
            bounds["ap_low"] = "0001-01-01T00:00:00.000Z"
        try:
            bounds["ap_high"] = (high + gap).strftime("%Y-%m-%dT%H:%M:%S.999Z")
        except OverflowError:
            bounds["ap_high"] = n.OPEN_END
    return bounds


def _number_bounds(v: NumberValue | QuantityValue) -> dict[str, float]:
    spread = abs(v.value) * 0.1
    return {"low": v.low, "high": v.high, "ap_low": v.value - spread, "ap_high": v.value + spread}


def _date(value: Value, modifier: str | None) -> Doc:
    assert isinstance(value, DateValue)
    return _range_condition(DATE_OPS, value.prefix, date_bounds(value), "lo", "hi")


def _number(value: Value, modifier: str | None) -> Doc:
    assert isinstance(value, NumberValue | QuantityValue)
    return _range_condition(NUMBER_OPS, value.prefix, _number_bounds(value), "lo", "hi")


def _quantity(value: Value, modifier: str | None) -> Doc:
    assert isinstance(value, QuantityValue)
    cond = _number(value, modifier)
    if value.system is not None:
        cond["s"] = value.system
        if value.code is not None:
            cond["c"] = value.code
    elif value.code is not None:  # no system: the code may be a UCUM code or the human unit
        cond = {"$and": [cond, {"$or": [{"c": value.code}, {"u": value.code}]}]}
    return cond


# --- strings, tokens, references, uris: equality and prefixes ---------------------------------------------


def _prefix_regex(text: str) -> Doc:
    """Anchored, escaped: user text is never a pattern (MongoDB turns ``^literal`` into index bounds)."""
    return {"$regex": "^" + re.escape(text)}


def _string(value: Value, modifier: str | None) -> Doc:
    assert isinstance(value, StringValue)
    if modifier == "exact":
        return {"e": value.text}
    folded = value.folded[:MAX_STRING]
    if modifier == "contains":
        return {"v": {"$regex": re.escape(folded)}}
    return {"v": _prefix_regex(folded)}


def _token(value: Value, modifier: str | None) -> Doc:
    if modifier == "text":
        assert isinstance(value, StringValue)
        return {"d": _prefix_regex(value.folded[:MAX_STRING])}
    assert isinstance(value, TokenValue)
    cond: Doc = {}
    if value.system == NO_SYSTEM:
        cond["s"] = None
    elif value.system is not None:
        cond["s"] = value.system
    if value.code is not None:
        cond["c"] = value.code
    return cond


def _reference(value: Value, modifier: str | None) -> Doc:
    """By (id, type) and/or by URL; an absolute URL of a local-looking reference matches either way."""
    assert isinstance(value, ReferenceValue)
    conds: list[Doc] = []
    if value.id is not None:
        conds.append({"i": value.id} if value.type is None else {"i": value.id, "t": value.type})
    if value.url is not None:
        conds.append({"u": value.url})
    return conds[0] if len(conds) == 1 else {"$or": conds}


def _uri(value: Value, modifier: str | None) -> Doc:
    assert isinstance(value, UriValue)
    if modifier == "below":
        return {"v": _prefix_regex(value.uri)}
    if modifier == "above":  # the stored uri is the search uri or one of its "/"-ancestors
        return {"v": {"$in": uri_ancestors(value.uri)}}
    return {"v": value.uri}


ElementCondition = Callable[[Value, str | None], Doc]
ELEMENT: dict[str, ElementCondition] = {
    "date": _date,
    "number": _number,
    "quantity": _quantity,
    "string": _string,
    "token": _token,
    "reference": _reference,
    "uri": _uri,
}


def _prefixed(cond: Doc, prefix: str) -> Doc:
    """Re-root an element condition under ``c0.`` etc. (composites), through ``$and``/``$or``."""
    return {k if k.startswith("$") else prefix + k:
            [_prefixed(c, prefix) for c in v] if k in ("$and", "$or", "$nor") else v
            for k, v in cond.items()}


def _composite(value: Value, components: tuple[tuple[str, str], ...]) -> Doc:
    assert isinstance(value, CompositeValue)
    parts = [_prefixed(ELEMENT[ctype](part, None), f"c{k}.")
             for k, ((_, ctype), part) in enumerate(zip(components, value.parts, strict=True))]
    return {"$and": parts}


# --- one filter -------------------------------------------------------------------------------------------


def _any_of(conds: list[Doc]) -> Doc:
    if not conds:
        return MATCH_NOTHING
    return conds[0] if len(conds) == 1 else {"$or": conds}


def _special(f: Filter) -> Doc:
    if f.name == "_id":
        return {n.RID: {"$in": [v.code for v in f.values if isinstance(v, TokenValue)]}}
    if f.name == "_lastUpdated":  # the stored instant is a range of one point: lo = hi = _lu
        dates = [v for v in f.values if isinstance(v, DateValue)]
        return _any_of([_range_condition(DATE_OPS, v.prefix, date_bounds(v), n.LU, n.LU) for v in dates])
    raise InvalidSearchParameter(f"Search parameter '{f.name}' is not supported by the MongoDB store")


def _resolved_ids(node: Filter | Has, resolved: Resolved) -> Doc:
    return {n.ID: {"$in": sorted({n.resource_key(t, i) for t, i in resolved.get(node, [])})}}


def compile_filter(f: Filter | Has, resolved: Resolved) -> Doc:
    """One AND-term of the query: ``f.values`` are ORed."""
    if isinstance(f, Has) or f.name == "_list":
        return _resolved_ids(f, resolved)  # type: ignore[arg-type]
    if f.type == "special":
        return _special(f)
    if f.chain is not None:
        pairs = resolved.get(f, [])
        if not pairs:
            return MATCH_NOTHING
        by_type: dict[str, list[str]] = {}
        for t, i in pairs:
            by_type.setdefault(t, []).append(i)
        return _any_of([{n.ix("reference"): {"$elemMatch": {"p": f.name, "t": t, "i": {"$in": sorted(ids)}}}}
                        for t, ids in sorted(by_type.items())])
    ptype, code = f.type, f.name
    if f.modifier == "identifier":
        ptype, code = "token", f"{f.name}:identifier"
    array = n.ix(ptype)
    if f.missing is not None:
        return {n.ix(ptype, "p"): {"$ne": code}} if f.missing else {n.ix(ptype, "p"): code}
    if ptype == "token" and f.modifier in TERMINOLOGY_MODIFIERS:
        matches = [{"p": code, **_code_pairs(resolved.get(f, []))}]
    elif ptype == "composite":
        matches = [{"p": code, **_composite(v, f.components)} for v in f.values]
    else:
        element = ELEMENT.get(ptype)
        if element is None:
            raise InvalidSearchParameter(f"Search parameter '{f.name}' of type {ptype} is not supported")
        values = f.values
        if ptype == "reference" and f.target_type is not None:  # Patient:subject=1 → Patient/1
            values = tuple(replace(v, type=v.type or f.target_type) if isinstance(v, ReferenceValue) else v
                           for v in values)
        modifier = None if f.modifier == "identifier" else f.modifier
        matches = [{"p": code, **element(v, modifier)} for v in values]
    conds = [{array: {"$elemMatch": m}} for m in matches]
    if f.modifier in ("not", "not-in"):  # no value matches, including resources without the element
        return {"$nor": conds}
    return _any_of(conds)


TERMINOLOGY_MODIFIERS = frozenset({"in", "not-in", "above", "below"})


def _code_pairs(pairs: list[tuple[str | None, str | None]]) -> Doc:
    """(system, code) pairs from a ValueSet expansion or a hierarchy; code None = any code of the system."""
    by_system: dict[str | None, list[str]] = {}
    ors: list[Doc] = []
    for system, code in pairs:
        if code is None:
            ors.append({"s": system})
        else:
            by_system.setdefault(system, []).append(code)
    for system, codes in by_system.items():
        ors.append({"c": {"$in": sorted(codes)}} if system is None else {"s": system, "c": {"$in": sorted(codes)}})
    if not ors:
        return {"c": {"$in": []}}
    return ors[0] if len(ors) == 1 else {"$or": ors}


def compile_query(query: SearchQuery, resolved: Resolved) -> Doc:
    """The whole AND of a query on the ``resources`` collection (current, non-deleted versions)."""
    base: Doc = {n.DELETED: False}
    if query.resource_type is not None:
        base[n.TYPE] = query.resource_type
    elif query.types:
        base[n.TYPE] = {"$in": list(query.types)}
    terms = [compile_filter(f, resolved) for f in query.filters]
    if query.ids:
        terms.append({n.RID: {"$in": list(query.ids)}})
    return {**base, "$and": terms} if terms else base
