"""Token ``:in`` / ``:not-in`` / ``:below`` / ``:above`` against ValueSets and CodeSystems held in the store.

ValueSets and CodeSystems are ordinary resources, found by their ``url`` search parameter (``idx_uri``).
Expansion is deliberately small: ``expansion.contains`` when present, else ``compose.include`` (explicit
concepts, a whole system, ``is-a`` filters on a CodeSystem we hold, nested ``valueSet`` imports) minus explicit
``compose.exclude`` concepts. Hierarchies come from nested ``concept`` lists and ``parent`` properties.

>>> _descendants({"concept": [{"code": "a", "concept": [{"code": "b"}]}]}, "a")
{'a', 'b'}
"""

from __future__ import annotations

import sqlite3
from typing import Any

from fhir_server.fhir import jsonio
from fhir_server.fhir.outcome import InvalidSearchParameter
from fhir_server.fhir.search.ast import TokenValue

MAX_DEPTH = 8
Pair = tuple[str | None, str | None]  # (system, code); code None = every code of the system


def _by_url(conn: sqlite3.Connection, rtype: str, url: str) -> dict[str, Any] | None:
    url = url.split("|", 1)[0]
    row = conn.execute(
        "SELECT r.body FROM resource r WHERE r.rtype = ? AND r.deleted = 0 AND r.rid IN "
        "(SELECT u.rid FROM idx_uri u WHERE u.rtype = ? AND u.param = 'url' AND u.uri = ?) "
        "ORDER BY r.last_updated DESC LIMIT 1",
        (rtype, rtype, url),
    ).fetchone()
    return None if row is None or row[0] is None else jsonio.loads(row[0])  # type: ignore[no-any-return]


def _walk(concepts: list[dict[str, Any]], parent: str | None, edges: dict[str, set[str]]) -> None:
    for c in concepts:
        code = c.get("code")
        if not isinstance(code, str):
            continue
        edges.setdefault(code, set())
        if parent is not None:
            edges[parent].add(code)
        for prop in c.get("property", ()):
            if prop.get("code") in ("parent", "subsumedBy") and isinstance(prop.get("valueCode"), str):
                edges.setdefault(prop["valueCode"], set()).add(code)
        _walk(c.get("concept", []), code, edges)


def _children(code_system: dict[str, Any]) -> dict[str, set[str]]:
    edges: dict[str, set[str]] = {}
    _walk(code_system.get("concept", []), None, edges)
    return edges


def _descendants(code_system: dict[str, Any], code: str) -> set[str]:
    edges = _children(code_system)
    found, todo = {code}, [code]
    while todo:
        for child in edges.get(todo.pop(), ()):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def _ancestors(code_system: dict[str, Any], code: str) -> set[str]:
    parents: dict[str, set[str]] = {}
    for parent, children in _children(code_system).items():
        for child in children:
            parents.setdefault(child, set()).add(parent)
    found, todo = {code}, [code]
    while todo:
        for p in parents.get(todo.pop(), ()):
            if p not in found:
                found.add(p)
                todo.append(p)
    return found


def _all_codes(code_system: dict[str, Any]) -> set[str]:
    return set(_children(code_system))


def expand(conn: sqlite3.Connection, url: str, depth: int = 0) -> set[Pair] | None:
    """(system, code) pairs of a ValueSet held in the store, or None if it is not known."""
    vs = _by_url(conn, "ValueSet", url)
    if vs is None or depth > MAX_DEPTH:
        return None
    contains = vs.get("expansion", {}).get("contains")
    if contains:
        out: set[Pair] = set()
        todo = list(contains)
        while todo:
            c = todo.pop()
            if c.get("code"):
                out.add((c.get("system"), c["code"]))
            todo += c.get("contains", [])
        return out
    compose = vs.get("compose", {})
    pairs: set[Pair] = set()
    for inc in compose.get("include", []):
        pairs |= _include(conn, inc, depth)
    for exc in compose.get("exclude", []):
        system = exc.get("system")
        pairs -= {(system, c.get("code")) for c in exc.get("concept", [])}
    return pairs


def _include(conn: sqlite3.Connection, inc: dict[str, Any], depth: int) -> set[Pair]:
    system = inc.get("system")
    pairs: set[Pair] = set()
    if inc.get("concept"):
        pairs = {(system, c.get("code")) for c in inc["concept"] if c.get("code")}
    elif inc.get("filter") and system:
        cs = _by_url(conn, "CodeSystem", system)
        for flt in inc["filter"]:
            if cs is not None and flt.get("property") == "concept" and flt.get("op") in ("is-a", "descendent-of"):
                codes = _descendants(cs, flt.get("value", ""))
                if flt["op"] == "descendent-of":
                    codes.discard(flt.get("value", ""))
                pairs |= {(system, c) for c in codes}
    elif system:
        pairs = {(system, None)}
    for nested in inc.get("valueSet", []):
        inner = expand(conn, nested, depth + 1)
        if inner is not None:
            pairs = inner if not pairs and not system else pairs & inner if pairs else inner
    return pairs


def _pairs_sql(pairs: set[Pair], p: str) -> tuple[str, list[object]]:
    if not pairs:
        return "0", []
    ors: list[str] = []
    args: list[object] = []
    by_system: dict[str | None, list[str]] = {}
    for system, code in pairs:
        if code is None:
            ors.append(f"{p}system = ?")
            args.append(system)
        else:
            by_system.setdefault(system, []).append(code)
    for system, codes in by_system.items():
        marks = ",".join("?" * len(codes))
        if system is None:
            ors.append(f"{p}code IN ({marks})")
            args += codes
        else:
            ors.append(f"({p}system = ? AND {p}code IN ({marks}))")
            args += [system, *codes]
    return "(" + " OR ".join(ors) + ")", args


def in_value_set(conn: sqlite3.Connection, name: str, url: str, p: str) -> tuple[str, list[object]]:
    pairs = expand(conn, url)
    if pairs is None:
        raise InvalidSearchParameter(f"Search parameter '{name}:in': ValueSet '{url}' is not known to this "
                                     f"server", code="not-found")
    return _pairs_sql(pairs, p)


def subsumption(conn: sqlite3.Connection, name: str, v: TokenValue, modifier: str, p: str
                ) -> tuple[str, list[object]]:
    """``:below`` (the code and its descendants) / ``:above`` (the code and its ancestors)."""
    if v.code is None:
        raise InvalidSearchParameter(f"Search parameter '{name}:{modifier}' needs a code")
    cs = _by_url(conn, "CodeSystem", v.system) if v.system else None
    codes = {v.code}
    if cs is not None:
        codes = _descendants(cs, v.code) if modifier == "below" else _ancestors(cs, v.code)
    system = v.system or None
    return _pairs_sql({(system, c) for c in codes}, p)
