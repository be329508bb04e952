"""Token ``:in`` / ``:not-in`` / ``:below`` / ``:above`` against ValueSets and CodeSystems held in the store.

The same deliberately small expansion as the SQLite store (``expansion.contains`` when present, else
``compose.include`` with explicit concepts, whole systems, ``is-a``/``descendent-of`` filters on a CodeSystem
we hold and nested ``valueSet`` imports, minus explicit ``compose.exclude`` concepts), written against an async
``fetch(resource_type, url)`` so the search runner can answer it from MongoDB. The result is a list of
(system, code) pairs (code None: every code of the system) that the filter compiler turns into ``$in`` lists.

>>> sorted(descendants({"concept": [{"code": "a", "concept": [{"code": "b"}]}]}, "a"))
['a', 'b']
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fhir_server.fhir.outcome import InvalidSearchParameter
from fhir_server.fhir.search.ast import Filter, TokenValue, UriValue

MAX_DEPTH = 8
Pair = tuple[str | None, str | None]
Fetch = Callable[[str, str], Awaitable[dict[str, Any] | None]]


def _edges(code_system: dict[str, Any]) -> dict[str, set[str]]:
    """parent code → child codes, from nested ``concept`` lists and ``parent``/``subsumedBy`` properties."""
    edges: dict[str, set[str]] = {}
    todo: list[tuple[dict[str, Any], str | None]] = [(c, None) for c in code_system.get("concept", [])]
    while todo:
        concept, parent = todo.pop()
        code = concept.get("code")
        if not isinstance(code, str):
            continue
        edges.setdefault(code, set())
        if parent is not None:
            edges[parent].add(code)
        for prop in concept.get("property", ()):
            if prop.get("code") in ("parent", "subsumedBy") and isinstance(prop.get("valueCode"), str):
                edges.setdefault(prop["valueCode"], set()).add(code)
        todo += [(child, code) for child in concept.get("concept", [])]
    return edges


def _closure(edges: dict[str, set[str]], code: str) -> set[str]:
    found, todo = {code}, [code]
    while todo:
        for nxt in edges.get(todo.pop(), ()):
            if nxt not in found:
                found.add(nxt)
                todo.append(nxt)
    return found


def descendants(code_system: dict[str, Any], code: str) -> set[str]:
    return _closure(_edges(code_system), code)


def ancestors(code_system: dict[str, Any], code: str) -> set[str]:
    parents: dict[str, set[str]] = {}
    for parent, children in _edges(code_system).items():
        for child in children:
            parents.setdefault(child, set()).add(parent)
    return _closure(parents, code)


async def expand(fetch: Fetch, url: str, depth: int = 0) -> set[Pair] | None:
    """(system, code) pairs of a ValueSet held in the store, or None if it is not known."""
    vs = await fetch("ValueSet", url.split("|", 1)[0])
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
        pairs |= await _include(fetch, inc, depth)
    for exc in compose.get("exclude", []):
        pairs -= {(exc.get("system"), c.get("code")) for c in exc.get("concept", [])}
    return pairs


async def _include(fetch: Fetch, inc: dict[str, Any], depth: int) -> set[Pair]:
    system = inc.get("system")
    pairs: set[Pair] = set()
    if inc.get("concept"):
        pairs = {(system, c.get("code")) for c in inc["concept"] if c.get("code")}
    elif inc.get("filter") and system:
        cs = await fetch("CodeSystem", system)
        for flt in inc["filter"]:
            if cs is not None and flt.get("property") == "concept" and flt.get("op") in ("is-a", "descendent-of"):
                codes = descendants(cs, flt.get("value", ""))
                if flt["op"] == "descendent-of":
                    codes.discard(flt.get("value", ""))
                pairs |= {(system, c) for c in codes}
    elif system:
        pairs = {(system, None)}
    for nested in inc.get("valueSet", []):
        inner = await expand(fetch, nested, depth + 1)
        if inner is not None:
            pairs = inner if not pairs and not system else pairs & inner if pairs else inner
    return pairs


async def code_pairs(fetch: Fetch, f: Filter) -> list[Pair]:
    """The (system, code) pairs a token filter with a terminology modifier stands for."""
    pairs: set[Pair] = set()
    for v in f.values:
        if isinstance(v, UriValue):  # :in / :not-in
            expanded = await expand(fetch, v.uri)
            if expanded is None:
                raise InvalidSearchParameter(f"Search parameter '{f.name}:{f.modifier}': ValueSet '{v.uri}' is "
                                             f"not known to this server", code="not-found")
            pairs |= expanded
        elif isinstance(v, TokenValue):  # :below / :above
            if v.code is None:
                raise InvalidSearchParameter(f"Search parameter '{f.name}:{f.modifier}' needs a code")
            cs = await fetch("CodeSystem", v.system) if v.system else None
            codes = {v.code}
            if cs is not None:
                codes = descendants(cs, v.code) if f.modifier == "below" else ancestors(cs, v.code)
            pairs |= {(v.system or None, c) for c in codes}
    return sorted(pairs, key=lambda p: (p[0] or "", p[1] or ""))
