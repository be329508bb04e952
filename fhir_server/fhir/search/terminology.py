"""Expansion for token ``:in`` / ``:not-in`` / ``:below`` / ``:above`` against ValueSets and CodeSystems the
server holds — pure: the stores supply a ``fetch(resource_type, url)`` lookup.

The expansion and the hierarchies are the validator's (``fhir.validation.terminology``), so ``$validate``,
``$expand`` and ``:in`` agree on what a ValueSet holds. The result is a set of (system, code) pairs; code None =
every code of the system. An async store answers through :func:`resolve`, which fetches what the expansion
asks for and re-runs it.

>>> sorted(descendants({"concept": [{"code": "a", "concept": [{"code": "b"}]}]}, "a"))
['a', 'b']
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from fhir_server.fhir.outcome import InvalidSearchParameter
from fhir_server.fhir.search.ast import Filter, TokenValue, UriValue
from fhir_server.fhir.validation.terminology import code_system_hierarchy, strip_version
from fhir_server.fhir.validation.terminology import expand as expand_value_set

Pair = tuple[str | None, str | None]
Fetch = Callable[[str, str], dict[str, Any] | None]
AsyncFetch = Callable[[str, str], Awaitable[dict[str, Any] | None]]
T = TypeVar("T")


def descendants(code_system: dict[str, Any], code: str) -> set[str]:
    """The code and every code below it."""
    return {code} | code_system_hierarchy(code_system).descendants(code)


def ancestors(code_system: dict[str, Any], code: str) -> set[str]:
    """The code and every code above it."""
    parents: dict[str, set[str]] = {}
    for parent, children in code_system_hierarchy(code_system).children.items():
        for child in children:
            parents.setdefault(child, set()).add(parent)
    found, todo = {code}, [code]
    while todo:
        for p in parents.get(todo.pop(), ()):
            if p not in found:
                found.add(p)
                todo.append(p)
    return found


def expand(fetch: Fetch, url: str) -> set[Pair] | None:
    """(system, code) pairs of a ValueSet held in the store, or None if it is not known.

    The expansion is the validator's (one implementation of compose rules and filters); a system the server
    cannot enumerate stays open as ``(system, None)``. An expansion that is open as a whole (an imported
    ValueSet the server does not hold) cannot answer a search exactly, so it is the client's error.
    """
    vs = fetch("ValueSet", strip_version(url))
    if vs is None:
        return None
    _refuse_filters_on_systems_not_held(fetch, url, vs)
    expansion = expand_value_set(vs, lambda u: fetch("ValueSet", u), lambda u: fetch("CodeSystem", u))
    if expansion.open_all:
        raise InvalidSearchParameter(f"ValueSet '{url}' imports or lists codes this server does not hold, so a "
                                     "search cannot use it", code="not-supported")
    pairs: set[Pair] = {(system, code) for system, codes in expansion.codes.items() for code in codes}
    # A system known only in part (a fragment) answers with the codes we know; one we cannot enumerate at all
    # (not held) stands for all its codes.
    return pairs | {(system, None) for system in expansion.open_systems if system not in expansion.codes}


def _refuse_filters_on_systems_not_held(fetch: Fetch, url: str, vs: dict[str, Any]) -> None:
    """A filter (``is-a F10``) on a code system the server does not hold selects codes we cannot list; the
    expansion keeps that system open, which would read as "every code of the system" — so refuse the search
    rather than match every ICD-10-CM code (the ``ascmi-sls-*`` label ValueSets are built that way)."""
    compose = vs.get("compose")
    if not isinstance(compose, dict):
        return
    for part in ("include", "exclude"):
        for inc in compose.get(part, ()):
            system = inc.get("system") if isinstance(inc, dict) else None
            if isinstance(system, str) and inc.get("filter") and fetch("CodeSystem", system) is None:
                raise InvalidSearchParameter(f"ValueSet '{url}' selects {system} codes by a filter, and this server "
                                             "does not hold that code system, so a search cannot use it",
                                             code="not-supported")


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
