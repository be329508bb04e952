"""ValueSet expansion and code membership, just enough for binding checks.

The validator never calls a terminology server: a ValueSet is expanded locally from ``compose`` (whole code
systems, concept lists, ``is-a``/``descendent-of``/``is-not-a``/``in``/``regex`` filters, imported value sets,
excludes) or taken from a stored ``expansion``. Parts we cannot enumerate (a code system we do not hold,
such as LOINC or BCP-47, or an unsupported filter) make the expansion *open* for that system: membership
there is unknown, so the caller reports nothing rather than a false error.

The same code runs at build time (``scripts/derive_validation_data.py`` pre-expands the bound value sets
of the base spec) and at run time (value sets and code systems the server holds).

>>> cs = {"url": "urn:cs", "content": "complete", "concept": [{"code": "a", "concept": [{"code": "b"}]}]}
>>> vs = {"compose": {"include": [{"system": "urn:cs", "filter": [{"op": "is-a", "value": "a"}]}]}}
>>> expand(vs, lambda url: None, {"urn:cs": cs}.get).contains("urn:cs", "b")
True
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

ResolveFn = Callable[[str], Mapping[str, Any] | None]

MAX_DEPTH = 12  # value sets importing value sets; deeper (or cyclic) imports are treated as open


@dataclass(frozen=True, slots=True)
class Expansion:
    """system → codes, plus systems whose membership we cannot decide."""

    codes: Mapping[str, frozenset[str]] = field(default_factory=dict)
    open_systems: frozenset[str] = frozenset()
    open_all: bool = False  # some part could not be expanded at all (unknown import, unknown filter target)

    def contains(self, system: str | None, code: str) -> bool | None:
        """True/False when decidable, None when the expansion cannot tell (open part)."""
        if system is None:
            if any(code in codes for codes in self.codes.values()):
                return True
            return None if (self.open_all or self.open_systems) else False
        codes = self.codes.get(system)
        if codes is not None and code in codes:
            return True
        if self.open_all or system in self.open_systems:
            return None
        return False

    @property
    def size(self) -> int:
        return sum(len(c) for c in self.codes.values())

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"codes": {s: sorted(c) for s, c in sorted(self.codes.items())}}
        if self.open_systems:
            out["open"] = sorted(self.open_systems)
        if self.open_all:
            out["openAll"] = True
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Expansion:
        return cls(
            {s: frozenset(c) for s, c in data.get("codes", {}).items()},
            frozenset(data.get("open", ())),
            bool(data.get("openAll")),
        )


def strip_version(url: str) -> str:
    """``http://hl7.org/fhir/ValueSet/x|4.0.1`` → ``http://hl7.org/fhir/ValueSet/x``."""
    return url.split("|", 1)[0]


@dataclass(slots=True)
class _Hierarchy:
    codes: set[str]
    children: dict[str, set[str]]
    properties: dict[str, dict[str, set[str]]] = field(default_factory=dict)  # code → property → values
    displays: dict[str, set[str]] = field(default_factory=dict)  # code → display and designation values

    def ancestors(self, code: str) -> set[str]:
        parents: dict[str, set[str]] = {}
        for parent, kids in self.children.items():
            for kid in kids:
                parents.setdefault(kid, set()).add(parent)
        out: set[str] = set()
        stack = [code]
        while stack:
            for parent in parents.get(stack.pop(), ()):
                if parent not in out:
                    out.add(parent)
                    stack.append(parent)
        return out

    def descendants(self, code: str) -> set[str]:
        out: set[str] = set()
        stack = [code]
        while stack:
            for child in self.children.get(stack.pop(), ()):
                if child not in out:
                    out.add(child)
                    stack.append(child)
        return out


# Keyed by identity, holding the CodeSystem itself: an id() alone could be reused by a later object.
_hierarchy_cache: dict[int, tuple[Mapping[str, Any], _Hierarchy]] = {}


def code_system_hierarchy(cs: Mapping[str, Any]) -> _Hierarchy:
    """All codes of a CodeSystem with parent → children (nesting and ``subsumedBy``/``parent`` properties)."""
    key = id(cs)
    cached = _hierarchy_cache.get(key)
    if cached is not None and cached[0] is cs:
        return cached[1]
    codes: set[str] = set()
    children: dict[str, set[str]] = {}
    properties: dict[str, dict[str, set[str]]] = {}
    displays: dict[str, set[str]] = {}

    def walk(concepts: Iterable[Mapping[str, Any]], parent: str | None) -> None:
        for concept in concepts:
            code = concept.get("code")
            if not isinstance(code, str):
                continue
            codes.add(code)
            if parent is not None:
                children.setdefault(parent, set()).add(code)
            names = displays.setdefault(code, set())
            if isinstance(concept.get("display"), str):
                names.add(concept["display"])
            for designation in concept.get("designation", ()):
                if isinstance(designation, Mapping) and isinstance(designation.get("value"), str):
                    names.add(designation["value"])
            for prop in concept.get("property", ()):
                if not isinstance(prop, Mapping) or not isinstance(prop.get("code"), str):
                    continue
                if prop["code"] in ("subsumedBy", "parent") and isinstance(prop.get("valueCode"), str):
                    children.setdefault(prop["valueCode"], set()).add(code)
                value = next((v for k, v in prop.items() if k.startswith("value")), None)
                if value is not None and not isinstance(value, Mapping):
                    text = str(value).lower() if isinstance(value, bool) else str(value)
                    properties.setdefault(code, {}).setdefault(prop["code"], set()).add(text)
            walk(concept.get("concept", ()), code)

    walk(cs.get("concept", ()), None)
    result = _Hierarchy(codes, children, properties, displays)
    if len(_hierarchy_cache) > 4096:
        _hierarchy_cache.clear()
    _hierarchy_cache[key] = (cs, result)
    return result


def _filter_codes(h: _Hierarchy, flt: Mapping[str, Any]) -> set[str] | None:
    op, prop, value = flt.get("op"), flt.get("property"), flt.get("value")
    if not isinstance(value, str):
        return None
    if op == "is-a":
        return ({value} | h.descendants(value)) & h.codes if value in h.codes else set()
    if op == "descendent-of":
        return h.descendants(value)
    if op == "is-not-a":
        return h.codes - {value} - h.descendants(value)
    if op == "generalizes":
        return ({value} | h.ancestors(value)) & h.codes if value in h.codes else set()
    listed = {v.strip() for v in value.split(",")}
    if prop in ("concept", "code"):
        if op == "in":
            return listed & h.codes
        if op == "not-in":
            return h.codes - listed
        if op == "=":
            return {value} & h.codes
        if op == "regex":
            pattern = _regex(value)
            return None if pattern is None else {c for c in h.codes if pattern.fullmatch(c)}
        return None
    if not isinstance(prop, str):
        return None
    # a property filter (codesystem.html#filters): the concept's values of that property
    def values(code: str) -> set[str]:
        return h.properties.get(code, {}).get(prop, set())
    if op == "exists":
        want = value.lower() == "true"
        return {c for c in h.codes if bool(values(c)) == want}
    if op == "=":
        return {c for c in h.codes if value in values(c)}
    if op == "in":
        return {c for c in h.codes if values(c) & listed}
    if op == "not-in":
        return {c for c in h.codes if not values(c) & listed}
    if op == "regex":
        pattern = _regex(value)
        return None if pattern is None else {c for c in h.codes if any(pattern.fullmatch(v) for v in values(c))}
    return None


def _regex(value: str) -> re.Pattern[str] | None:
    try:
        return re.compile(value)
    except re.error:
        return None


def concept_displays(cs: Mapping[str, Any], code: str) -> set[str] | None:
    """The display and designations a CodeSystem gives ``code`` (None when it has no such code)."""
    h = code_system_hierarchy(cs)
    return h.displays.get(code, set()) if code in h.codes else None


def _whole_system(system: str, filters: Iterable[Mapping[str, Any]], resolve_cs: ResolveFn) -> Expansion:
    """All codes of a held code system that pass the filters; open when we cannot enumerate them."""
    cs = resolve_cs(system)
    if cs is None or cs.get("content") in ("not-present", "example"):
        return Expansion({}, frozenset({system}))
    h = code_system_hierarchy(cs)
    codes = set(h.codes)
    for flt in filters:
        selected = _filter_codes(h, flt)
        if selected is None:
            return Expansion({}, frozenset({system}))
        codes &= selected
    fragment = frozenset({system}) if cs.get("content") in ("fragment", "supplement") else frozenset()
    return Expansion({system: frozenset(codes)}, fragment)


def _include(inc: Mapping[str, Any], resolve_vs: ResolveFn, resolve_cs: ResolveFn, depth: int) -> Expansion:
    system = inc.get("system")
    parts: list[Expansion] = []
    if isinstance(system, str):
        if inc.get("concept"):
            listed = {c["code"] for c in inc["concept"] if isinstance(c.get("code"), str)}
            parts.append(Expansion({system: frozenset(listed)}))
        else:
            parts.append(_whole_system(system, inc.get("filter", ()), resolve_cs))
    for vs_url in inc.get("valueSet", ()):
        vs = resolve_vs(strip_version(vs_url)) if depth < MAX_DEPTH else None
        parts.append(
            expand(vs, resolve_vs, resolve_cs, depth + 1) if vs is not None else Expansion(open_all=True)
        )
    if not parts:
        return Expansion(open_all=True)
    result = parts[0]
    for other in parts[1:]:
        result = _intersect(result, other)
    return result


def _intersect(a: Expansion, b: Expansion) -> Expansion:
    codes: dict[str, frozenset[str]] = {}
    for system in set(a.codes) | set(b.codes):
        left = a.codes.get(system)
        right = b.codes.get(system)
        if left is not None and right is not None:
            codes[system] = left & right
        elif left is not None and (b.open_all or system in b.open_systems):
            codes[system] = left
        elif right is not None and (a.open_all or system in a.open_systems):
            codes[system] = right
    open_systems = (
        (a.open_systems & b.open_systems)
        | (a.open_systems if b.open_all else frozenset())
        | (b.open_systems if a.open_all else frozenset())
    )
    return Expansion(codes, open_systems, a.open_all and b.open_all)


def _union(parts: Iterable[Expansion]) -> Expansion:
    codes: dict[str, set[str]] = {}
    open_systems: set[str] = set()
    open_all = False
    for part in parts:
        for system, cs in part.codes.items():
            codes.setdefault(system, set()).update(cs)
        open_systems |= part.open_systems
        open_all = open_all or part.open_all
    return Expansion({s: frozenset(c) for s, c in codes.items()}, frozenset(open_systems), open_all)


def expand(vs: Mapping[str, Any], resolve_vs: ResolveFn, resolve_cs: ResolveFn, depth: int = 0) -> Expansion:
    """Expand a ValueSet resource; ``resolve_*`` look canonical urls (without version) up."""
    expansion = vs.get("expansion")
    if isinstance(expansion, Mapping) and expansion.get("contains") and not expansion.get("parameter"):
        codes: dict[str, set[str]] = {}

        def walk(items: Iterable[Mapping[str, Any]]) -> None:
            for item in items:
                if isinstance(item.get("code"), str):
                    codes.setdefault(item.get("system", ""), set()).add(item["code"])
                walk(item.get("contains", ()))

        walk(expansion["contains"])
        total = expansion.get("total")
        complete = not isinstance(total, int) or total <= sum(len(c) for c in codes.values())
        return Expansion({s: frozenset(c) for s, c in codes.items()}, frozenset(), not complete)
    compose = vs.get("compose")
    if not isinstance(compose, Mapping):
        return Expansion(open_all=True)
    result = _union(_include(inc, resolve_vs, resolve_cs, depth) for inc in compose.get("include", ()))
    for exc in compose.get("exclude", ()):
        removed = _include(exc, resolve_vs, resolve_cs, depth)
        result = Expansion(
            {s: c - removed.codes.get(s, frozenset()) for s, c in result.codes.items()},
            result.open_systems,
            result.open_all,
        )
    return result
