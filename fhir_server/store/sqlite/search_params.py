"""Compile one search filter to a parametrised SQL condition: one function per parameter type, by a dict.

Every condition has the form ``<alias>.rid [NOT] IN (SELECT rid FROM idx_<type> WHERE rtype = ? AND param = ?
AND <value match>)`` so that the index subquery is an index range (``idx_<type>_search``) and the resource row
is reached by its primary key. Values are always bound parameters; LIKE patterns escape ``%``, ``_``, ``\\``.

Prefix semantics (R4 search.html §3.1.1.4) are tables: dates compare inclusive [low, high] instants, numbers
and quantities compare [low, high) ranges from their significant digits.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

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
    StringValue,
    TokenValue,
    UriValue,
    Value,
)
from fhir_server.fhir.search.normalize import uri_ancestors
from fhir_server.store.sqlite import terminology
from fhir_server.store.sqlite.index import TABLES

TOP = "\U0010ffff"  # sorts after any character: [p, p+TOP) is "starts with p"
Sql = tuple[str, list[object]]

# prefix → (condition on a row's low/high, which search bounds fill the two placeholders)
DATE_OPS: dict[str, tuple[str, tuple[str, ...]]] = {
    "eq": ("({low} >= ? AND {high} <= ?)", ("low", "high")),
    "ne": ("NOT ({low} >= ? AND {high} <= ?)", ("low", "high")),
    "gt": ("{high} > ?", ("high",)),
    "lt": ("{low} < ?", ("low",)),
    "ge": ("{high} >= ?", ("low",)),
    "le": ("{low} <= ?", ("high",)),
    "sa": ("{low} > ?", ("high",)),
    "eb": ("{high} < ?", ("low",)),
    "ap": ("({low} <= ? AND {high} >= ?)", ("ap_high", "ap_low")),
}
NUMBER_OPS: dict[str, tuple[str, tuple[str, ...]]] = {  # high bounds are exclusive
    "eq": ("({low} >= ? AND {high} <= ?)", ("low", "high")),
    "ne": ("NOT ({low} >= ? AND {high} <= ?)", ("low", "high")),
    "gt": ("{high} > ?", ("high",)),
    "lt": ("{low} < ?", ("low",)),
    "ge": ("{high} > ?", ("low",)),
    "le": ("{low} < ?", ("high",)),
    "sa": ("{low} >= ?", ("high",)),
    "eb": ("{high} <= ?", ("low",)),
    "ap": ("({low} < ? AND {high} > ?)", ("ap_high", "ap_low")),
}


@dataclass
class Context:
    """Per-query compilation state: the connection (terminology lookups) and an alias counter."""

    conn: sqlite3.Connection
    n: int = 0

    def alias(self, prefix: str) -> str:
        self.n += 1
        return f"{prefix}{self.n}"


def like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _date_bounds(v: DateValue) -> dict[str, object]:
    bounds: dict[str, object] = {"low": v.low, "high": v.high}
    if v.prefix == "ap":  # ±10% of the distance from now, at least the value's own range
        fmt = "%Y-%m-%dT%H:%M:%S.%fZ"
        low = datetime.strptime(v.low, fmt).replace(tzinfo=UTC)
        gap = abs(datetime.now(UTC) - low) * 0.1
        try:
            bounds["ap_low"] = (low - gap).strftime("%Y-%m-%dT%H:%M:%S.000Z")
        except OverflowError:
            bounds["ap_low"] = "0001-01-01T00:00:00.000Z"
        high = datetime.strptime(v.high, fmt).replace(tzinfo=UTC)
        try:
            bounds["ap_high"] = (high + gap).strftime("%Y-%m-%dT%H:%M:%S.999Z")
        except OverflowError:
            bounds["ap_high"] = "9999-12-31T23:59:59.999Z"
    return bounds


def _number_bounds(v: NumberValue | QuantityValue) -> dict[str, object]:
    spread = abs(v.value) * 0.1
    return {"low": v.low, "high": v.high, "ap_low": v.value - spread, "ap_high": v.value + spread}


def _ops(table: dict[str, tuple[str, tuple[str, ...]]], prefix: str, bounds: dict[str, object], p: str) -> Sql:
    template, fills = table[prefix]
    return template.format(low=f"{p}low", high=f"{p}high"), [bounds[f] for f in fills]


# ---- value matchers: condition on one index row (columns prefixed by ``p``) ------------------------------

def match_date(ctx: Context, f: Filter, v: Value, p: str) -> Sql:
    assert isinstance(v, DateValue)
    return _ops(DATE_OPS, v.prefix, _date_bounds(v), p)


def match_number(ctx: Context, f: Filter, v: Value, p: str) -> Sql:
    assert isinstance(v, NumberValue)
    return _ops(NUMBER_OPS, v.prefix, _number_bounds(v), p)


def match_quantity(ctx: Context, f: Filter, v: Value, p: str) -> Sql:
    assert isinstance(v, QuantityValue)
    sql, args = _ops(NUMBER_OPS, v.prefix, _number_bounds(v), p)
    if v.system is not None:
        sql += f" AND {p}system = ? AND {p}code = ?"
        args += [v.system, v.code]
    elif v.code is not None:
        sql += f" AND ({p}code = ? OR {p}unit = ?)"
        args += [v.code, v.code]
    return sql, args


def match_string(ctx: Context, f: Filter, v: Value, p: str) -> Sql:
    assert isinstance(v, StringValue)
    if f.modifier == "exact":
        return f"{p}exact = ?", [v.text]
    if f.modifier == "contains":
        return f"{p}value LIKE ? ESCAPE '\\'", [f"%{like_escape(v.folded)}%"]
    return f"({p}value >= ? AND {p}value < ?)", [v.folded, v.folded + TOP]


def match_token(ctx: Context, f: Filter, v: Value, p: str) -> Sql:
    if isinstance(v, StringValue):  # :text
        return f"({p}text >= ? AND {p}text < ?)", [v.folded, v.folded + TOP]
    if isinstance(v, UriValue):  # :in / :not-in
        return terminology.in_value_set(ctx.conn, f.name, v.uri, p)
    assert isinstance(v, TokenValue)
    if f.modifier in ("below", "above"):
        return terminology.subsumption(ctx.conn, f.name, v, f.modifier, p)
    if v.system is None:
        return f"{p}code = ?", [v.code]
    if v.system == NO_SYSTEM:
        return f"({p}code = ? AND {p}system IS NULL)", [v.code]
    if v.code is None:
        return f"{p}system = ?", [v.system]
    return f"({p}code = ? AND {p}system = ?)", [v.code, v.system]


def match_reference(ctx: Context, f: Filter, v: Value, p: str) -> Sql:
    assert isinstance(v, ReferenceValue)
    parts: list[str] = []
    args: list[object] = []
    if v.id is not None:
        if v.type is not None:
            parts.append(f"({p}ref_id = ? AND {p}ref_type = ?)")
            args += [v.id, v.type]
        else:
            parts.append(f"{p}ref_id = ?")
            args.append(v.id)
    if v.url is not None:
        parts.append(f"{p}url = ?")
        args.append(v.url)
    return "(" + " OR ".join(parts) + ")", args


def match_uri(ctx: Context, f: Filter, v: Value, p: str) -> Sql:
    assert isinstance(v, UriValue)
    if f.modifier == "below":
        return f"({p}uri >= ? AND {p}uri < ?)", [v.uri, v.uri + TOP]
    if f.modifier == "above":
        prefixes = uri_ancestors(v.uri)
        return f"{p}uri IN ({','.join('?' * len(prefixes))})", list(prefixes)
    return f"{p}uri = ?", [v.uri]


MATCHERS: dict[str, Callable[[Context, Filter, Value, str], Sql]] = {
    "date": match_date,
    "number": match_number,
    "quantity": match_quantity,
    "string": match_string,
    "token": match_token,
    "reference": match_reference,
    "uri": match_uri,
}


# ---- conditions on a resource alias -------------------------------------------------------------------

def _rtype_sql(rtype: str | None, col: str) -> Sql:
    return (f"{col} = ?", [rtype]) if rtype is not None else ("1", [])


def _membership(table: str, a: str, where: str, args: list[object], rtype: str | None, alias: str,
                drive: bool, negate: bool = False) -> Sql:
    """Index rows ``where`` exist (or not) for the resource ``alias``.

    Driving: ``alias.rid IN (SELECT rid … WHERE rtype = ? AND …)`` — an index range that yields candidates.
    Probing: ``[NOT] EXISTS (SELECT 1 … WHERE rid = alias.rid AND …)`` — one lookup in the rid index per
    candidate, never a materialised list of every resource with (say) ``status=active``.
    """
    if drive and not negate:
        rsql, rargs = _rtype_sql(rtype, f"{a}.rtype")
        return f"{alias}.rid IN (SELECT {a}.rid FROM {table} {a} WHERE {rsql} AND {where})", [*rargs, *args]
    sql = f"{'NOT ' if negate else ''}EXISTS (SELECT 1 FROM {table} {a} WHERE {a}.rid = {alias}.rid AND {where})"
    return sql, args


def _values_where(ctx: Context, f: Filter, ptype: str, param: str, a: str) -> Sql:
    """``a.param = ? AND (v1 OR v2 …)`` for the filter's values on index alias ``a``."""
    args: list[object] = [param]
    ors = []
    for v in f.values:
        sql, vargs = MATCHERS[ptype](ctx, f, v, f"{a}.")
        ors.append(sql)
        args += vargs
    where = f"{a}.param = ?"
    if ors:
        where += " AND (" + " OR ".join(ors) + ")"
    return where, args


def _plain_parts(ctx: Context, f: Filter) -> tuple[str, str, str, list[object], bool]:
    """(index table, its alias, condition on the index row, args, negated) of a plain filter."""
    ptype, param = f.type, f.name
    if f.modifier == "identifier":
        ptype, param = "token", f"{f.name}:identifier"
        f = Filter(f.name, "token", f.values, None, resource_type=f.resource_type)
    table, a = TABLES[ptype][0], ctx.alias("i")
    if f.missing is not None:
        return table, a, f"{a}.param = ?", [param], f.missing
    negate = f.modifier in ("not", "not-in")
    if negate:
        f = Filter(f.name, f.type, f.values, "in" if f.modifier == "not-in" else None)
    if ptype == "reference" and f.target_type is not None:
        f = Filter(f.name, f.type, tuple(ReferenceValue(v.type or f.target_type, v.id, v.url)  # type: ignore[union-attr]
                                         for v in f.values), f.modifier)
    where, args = _values_where(ctx, f, ptype, param, a)
    return table, a, where, args, negate


def plain_condition(ctx: Context, f: Filter, rtype: str | None, alias: str, drive: bool) -> Sql:
    table, a, where, args, negate = _plain_parts(ctx, f)
    return _membership(table, a, where, args, rtype, alias, drive, negate)


def candidates(ctx: Context, f: Filter | Has, rtype: str) -> Sql | None:
    """``SELECT a.rid FROM idx_… a WHERE …``: the index range a plain (non-negated) filter drives with; None for
    filters that are not one index range (chains, composites, ``_has``, specials, negations).

    Index rows exist only for live resources of ``rtype`` (a delete removes them), so the range alone answers
    "how many resources match" — the planner uses a ``LIMIT``-bounded count of it as its selectivity probe.
    """
    if isinstance(f, Has) or f.chain is not None or f.type in CONDITIONS or driver_rank(f) is None:
        return None
    table, a, where, args, negate = _plain_parts(ctx, f)
    if negate:
        return None
    return f"SELECT {a}.rid FROM {table} {a} WHERE {a}.rtype = ? AND {where}", [rtype, *args]


def composite_condition(ctx: Context, f: Filter, rtype: str | None, alias: str, drive: bool) -> Sql:
    """Components joined on (rid, grp): ``code-value-quantity=loinc|8867-4$gt60`` matches one element."""
    if f.missing is not None:
        table, a = TABLES[f.components[0][1]][0], ctx.alias("c")
        return _membership(table, a, f"{a}.param = ?", [f"{f.name}:0"], rtype, alias, drive, negate=f.missing)
    ors, args = [], []
    for value in f.values:
        assert isinstance(value, CompositeValue)
        aliases = [ctx.alias("c") for _ in f.components]
        first = aliases[0]
        from_sql, joins, jargs = "", [], []
        where: list[str] = [f"{first}.param = ?"]
        wargs: list[object] = [f"{f.name}:0"]
        for pos, ((code, ctype), part, a) in enumerate(zip(f.components, value.parts, aliases, strict=True)):
            table = TABLES[ctype][0]
            msql, margs = MATCHERS[ctype](ctx, Filter(code, ctype, (part,)), part, f"{a}.")
            if pos == 0:
                from_sql = f"{table} {a}"
                where.append(msql)
                wargs += margs
            else:
                joins.append(f"JOIN {table} {a} ON {a}.rid = {first}.rid AND {a}.param = ? AND "
                             f"{a}.grp = {first}.grp AND {msql}")
                jargs += [f"{f.name}:{pos}", *margs]
        if drive:
            rsql, rargs = _rtype_sql(rtype, f"{first}.rtype")
            ors.append(f"{alias}.rid IN (SELECT {first}.rid FROM {from_sql} {' '.join(joins)} "
                       f"WHERE {rsql} AND {' AND '.join(where)})")
            args += [*jargs, *rargs, *wargs]
        else:
            ors.append(f"EXISTS (SELECT 1 FROM {from_sql} {' '.join(joins)} WHERE {first}.rid = {alias}.rid "
                       f"AND {' AND '.join(where)})")
            args += [*jargs, *wargs]
    return "(" + " OR ".join(ors) + ")", args


def special_condition(ctx: Context, f: Filter, rtype: str | None, alias: str, drive: bool) -> Sql:
    """``_id`` and ``_lastUpdated`` on the resource table's own columns; ``_list`` through List.entry.item."""
    if f.name == "_id":
        ids = [v.code for v in f.values if isinstance(v, TokenValue)]
        return f"{alias}.id IN ({','.join('?' * len(ids))})", list(ids)
    if f.name == "_lastUpdated":
        ors, args = [], []
        for v in f.values:
            assert isinstance(v, DateValue)
            template, fills = DATE_OPS[v.prefix]
            bounds = _date_bounds(v)
            ors.append(template.format(low=f"{alias}.last_updated", high=f"{alias}.last_updated"))
            args += [bounds[x] for x in fills]
        return "(" + " OR ".join(ors) + ")", args
    if f.name == "_list":
        ids = [v.code for v in f.values if isinstance(v, TokenValue)]
        a, lst = ctx.alias("l"), ctx.alias("r")
        sub = (f"SELECT {a}.ref_id FROM idx_reference {a} WHERE {a}.rtype = 'List' AND {a}.param = 'item' "
               f"AND {a}.ref_type = {alias}.rtype AND {a}.rid IN (SELECT {lst}.rid FROM resource {lst} WHERE "
               f"{lst}.rtype = 'List' AND {lst}.deleted = 0 AND {lst}.id IN ({','.join('?' * len(ids))}))")
        return f"{alias}.id IN ({sub})", list(ids)
    raise InvalidSearchParameter(f"Search parameter '{f.name}' is not supported")


def chain_condition(ctx: Context, f: Filter, rtype: str | None, alias: str, drive: bool) -> Sql:
    """``patient.name=x``: the reference points at a resource (of a chain type) that matches the inner filter."""
    assert f.chain is not None
    x = ctx.alias("x")
    ors, args = [], []
    for t in f.chain_types:
        ia = ctx.alias("t")
        inner_sql, inner_args = condition(ctx, f.chain, t, ia, drive=True)
        ors.append(f"({x}.ref_type = ? AND {x}.ref_id IN (SELECT {ia}.id FROM resource {ia} "
                   f"WHERE {ia}.rtype = ? AND {ia}.deleted = 0 AND {inner_sql}))")
        args += [t, t, *inner_args]
    return _membership("idx_reference", x, f"{x}.param = ? AND ({' OR '.join(ors)})", [f.name, *args],
                       rtype, alias, drive)


def has_condition(ctx: Context, h: Has, rtype: str | None, alias: str, drive: bool) -> Sql:
    """``_has:Observation:patient:code=x``: some Observation matching ``code=x`` refers here via ``patient``."""
    x, s = ctx.alias("x"), ctx.alias("s")
    inner_sql, inner_args = condition(ctx, h.inner, h.source_type, s, drive=True)
    type_sql, type_args = (f"{x}.ref_type = ?", [rtype]) if rtype else (f"{x}.ref_type = {alias}.rtype", [])
    sub = (f"SELECT {x}.ref_id FROM idx_reference {x} WHERE {x}.rtype = ? AND {x}.param = ? AND {type_sql} "
           f"AND {x}.rid IN (SELECT {s}.rid FROM resource {s} WHERE {s}.rtype = ? AND {s}.deleted = 0 "
           f"AND {inner_sql})")
    return f"{alias}.id IN ({sub})", [h.source_type, h.reference_param, *type_args, h.source_type, *inner_args]


def condition(ctx: Context, f: Filter | Has, rtype: str | None, alias: str, drive: bool = True) -> Sql:
    """SQL condition on ``alias`` (a ``resource`` row of type ``rtype``) for one AST filter.

    ``drive``: written as an index range yielding candidates (one per query); otherwise as a probe.
    """
    if isinstance(f, Has):
        return has_condition(ctx, f, rtype, alias, drive)
    if f.chain is not None:
        return chain_condition(ctx, f, rtype, alias, drive)
    return CONDITIONS.get(f.type, plain_condition)(ctx, f, rtype, alias, drive)


CONDITIONS: dict[str, Callable[[Context, Filter, str | None, str, bool], Sql]] = {
    "special": special_condition,
    "composite": composite_condition,
}

# Which filter drives the plan: the likely most selective one (lower is better).
SELECTIVITY = {"reference": 0, "composite": 1, "string": 2, "token": 2, "uri": 2, "quantity": 3, "number": 3,
               "date": 4}


def driver_rank(f: Filter | Has) -> int | None:
    """Rank of a filter as the plan's driver; None if it cannot drive (negations, resource-table filters)."""
    if isinstance(f, Has) or f.type == "special":
        return None
    if f.missing is True or f.modifier in ("not", "not-in"):
        return None
    if f.chain is not None:
        return 1
    return SELECTIVITY.get(f.type, 5)
