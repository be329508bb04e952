"""Expansion for token ``:in`` / ``:not-in`` / ``:below`` / ``:above`` against ValueSets and CodeSystems the
server holds — pure: the stores supply a ``fetch(resource_type, url)`` lookup.

Expansion is deliberately small: ``expansion.contains`` when present, else ``compose.include`` (explicit
concepts, a whole system, ``is-a``/``descendent-of`` filters on a CodeSystem we hold, nested ``valueSet``
imports) minus explicit ``compose.exclude`` concepts. Hierarchies come from nested ``concept`` lists and
``parent``/``subsumedBy`` properties. The result is a set of (system, code) pairs; code None = every code of the
system. An async store answers through :func:`resolve`, which fetches what the expansion asks for and re-runs it.

>>> sorted(descendants({"concept": [{"code": "a", "concept": [{"code": "b"}]}]}, "a"))
['a', 'b']
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from fhir_server.fhir.outcome import InvalidSearchParameter
from fhir_server.fhir.search.ast import Filter, TokenValue, UriValue

MAX_DEPTH = 8
Pair = tuple[str | None, str | None]
Fetch = Callable[[str, str], dict[str, Any] | None]
AsyncFetch = Callable[[str, str], Awaitable[dict[str, Any] | None]]
T = TypeVar("T")


def _edges(code_system: dict[str, Any]) -> dict[str, set[str]]:
    """parent code → child codes."""
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


def expand(fetch: Fetch, url: str, depth: int = 0) -> set[Pair] | None:
    """(system, code) pairs of a ValueSet held in the store, or None if it is not known."""
    vs = fetch("ValueSet", url.split("|", 1)[0])
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
        pairs |= _include(fetch, inc, depth)
    for exc in compose.get("exclude", []):
        pairs -= {(exc.get("system"), c.get("code")) for c in exc.get("concept", [])}
    return pairs


def _include(fetch: Fetch, inc: dict[str, Any], depth: int) -> set[Pair]:
    system = inc.get("system")
    pairs: set[Pair] = set()
    if inc.get("concept"):
        pairs = {(system, c.get("code")) for c in inc["concept"] if c.get("code")}
    elif inc.get("filter") and system:
        cs = fetch("CodeSystem", system)
        for flt in inc["filter"]:
            if cs is not None and flt.get("property") == "concept" and flt.get("op") in ("is-a", "descendent-of"):
                codes = descendants(cs, flt.get("value", ""))
                if flt["op"] == "descendent-of":
                    codes.discard(flt.get("value", ""))
                pairs |= {(system, c) for c in codes}
    elif system:
        pairs = {(system, None)}
    for nested in inc.get("valueSet", []):
        inner = expand(fetch, nested, depth + 1)
        if inner is not None:
            pairs = inner if not pairs and not system else pairs & inner if pairs else inner
    return pairs


def value_set_pairs(fetch: Fetch, name: str, modifier: str, url: str) -> set[Pair]:
    """``:in``/``:not-in``: the ValueSet's pairs; an unknown ValueSet is the client's error."""
    expanded = expand(fetch, url)
    if expanded is None:
        raise InvalidSearchParameter(f"Search parameter '{name}:{modifier}': ValueSet '{url}' is not known to "
                                     f"this server", code="not-found")
    return expanded


def subsumption_pairs(fetch: Fetch, name: str, modifier: str, v: TokenValue) -> set[Pair]:
    """``:below`` (the code and its descendants) / ``:above`` (the code and its ancestors)."""
    if v.code is None:
        raise InvalidSearchParameter(f"Search parameter '{name}:{modifier}' needs a code")
    cs = fetch("CodeSystem", v.system) if v.system else None
    codes = {v.code}
    if cs is not None:
        codes = descendants(cs, v.code) if modifier == "below" else ancestors(cs, v.code)
    return {(v.system or None, c) for c in codes}


def code_pairs(fetch: Fetch, f: Filter) -> list[Pair]:
    """The (system, code) pairs a token filter with a terminology modifier stands for, sorted."""
    pairs: set[Pair] = set()
    for v in f.values:
        if isinstance(v, UriValue):
            pairs |= value_set_pairs(fetch, f.name, str(f.modifier), v.uri)
        elif isinstance(v, TokenValue):
            pairs |= subsumption_pairs(fetch, f.name, str(f.modifier), v)
    return sorted(pairs, key=lambda p: (p[0] or "", p[1] or ""))


class _Missing(Exception):
    def __init__(self, key: tuple[str, str]) -> None:
        self.key = key


async def resolve(fetch: AsyncFetch, compute: Callable[[Fetch], T]) -> T:
    """Run a pure expansion against an async store: each lookup it needs is fetched, then it runs again.

    Expansions touch a handful of resources, so re-running is cheaper than writing every step twice.
    """
    cache: dict[tuple[str, str], dict[str, Any] | None] = {}

    def cached(rtype: str, url: str) -> dict[str, Any] | None:
        key = (rtype, url)
        if key not in cache:
            raise _Missing(key)
        return cache[key]

    for _ in range(64):
        try:
            return compute(cached)
        except _Missing as missing:
            cache[missing.key] = await fetch(*missing.key)
    raise InvalidSearchParameter("the ValueSet expansion needs too many ValueSets and CodeSystems")
