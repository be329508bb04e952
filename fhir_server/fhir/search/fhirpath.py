"""A fast evaluator for the FHIRPath subset used by the R4 search parameters, with fhirpathpy as fallback.

Every R4 search expression but one is a union (``|``) of paths built from these steps:

- ``Patient.name.family``                    fields (choice elements ``value[x]`` found by prefix)
- ``(Observation.value as Quantity)``         ``as`` / ``.as(T)`` / ``.ofType(T)`` on choice elements
- ``Observation.subject.where(resolve() is Patient)``   reference target type filter (no I/O: by the
  reference's ``Type/`` prefix or its ``type`` element)
- ``Patient.telecom.where(system='email')``  equality filter on a child
- ``Bundle.entry[0].resource``               index

Results are ``(value, type_hint)`` pairs where the hint is the choice suffix (``Quantity`` for
``valueQuantity``) or ``None``. fhirpathpy (no ``resolve()``, slow: ~50 µs per path) handles the rest.

>>> compile_path("(Observation.value as Quantity)")({"resourceType": "Observation", "valueQuantity": {"value": 1}})
[({'value': 1}, 'Quantity')]
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cache
from typing import Any

Item = tuple[Any, str | None]
Evaluator = Callable[[dict[str, Any]], list[Item]]

_AS_PAREN = re.compile(r"^\((.+) as (\w+)\)(.*)$")
_SEGMENT = re.compile(r"\.(?![^(]*\))")
_STEP_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"(\w+)"), "field"),
    (re.compile(r"(\w+)\[(\d+)\]"), "index"),
    (re.compile(r"(?:as|ofType)\((\w+)\)"), "as"),
    (re.compile(r"where\(resolve\(\) is (\w+)\)"), "resolve"),
    (re.compile(r"where\((\w+)\s*=\s*'([^']*)'\)"), "equals"),
]


@cache
def _choice_names() -> frozenset[str]:
    from fhir_server.fhir.search.definitions import choice_elements

    return choice_elements()


_scope = threading.local()


@contextmanager
def memo_scope() -> Iterator[None]:
    """Within the block, child lookups are memoised per (element, name): one resource's ~40 expressions
    share their prefixes (``Observation.value`` is looked up by nine parameters)."""
    _scope.memo = {}
    try:
        yield
    finally:
        _scope.memo = None


def _children(value: Any, name: str) -> list[Item]:
    if not isinstance(value, dict):
        return []
    memo: dict[tuple[int, str], list[Item]] | None = getattr(_scope, "memo", None)
    if memo is None:
        return _lookup(value, name)
    key = (id(value), name)
    found = memo.get(key)
    if found is None:
        found = memo[key] = _lookup(value, name)
    return found


def _lookup(value: dict[str, Any], name: str) -> list[Item]:
    found = value.get(name)
    if found is not None:
        return [(v, None) for v in found] if isinstance(found, list) else [(found, None)]
    if name not in _choice_names():
        return []
    out: list[Item] = []
    for key, v in value.items():  # choice element: valueQuantity, deceasedBoolean, ...
        if key.startswith(name) and len(key) > len(name) and key[len(name)].isupper():
            hint = key[len(name):]
            out += [(x, hint) for x in v] if isinstance(v, list) else [(v, hint)]
    return out


def _ref_type(value: Any) -> str | None:
    if not isinstance(value, dict):
        return None
    ref = value.get("reference")
    if isinstance(ref, str):
        parts = ref.split("/_history/")[0].split("/")
        if len(parts) >= 2:
            return parts[-2]
    t = value.get("type")
    return t if isinstance(t, str) else None


def _step(kind: str, args: tuple[str, ...]) -> Callable[[list[Item]], list[Item]]:
    if kind == "field":
        (name,) = args
        return lambda items: [c for v, _ in items for c in _children(v, name)]
    if kind == "index":
        name, n = args[0], int(args[1])

        def index(items: list[Item]) -> list[Item]:
            found = [c for v, _ in items for c in _children(v, name)]
            return found[n : n + 1]

        return index
    if kind == "as":
        wanted = args[0].lower()
        return lambda items: [(v, h) for v, h in items if h is None or h.lower() == wanted]
    if kind == "resolve":
        (target,) = args
        return lambda items: [(v, h) for v, h in items if _ref_type(v) == target]
    if kind == "equals":
        field, expected = args
        return lambda items: [(v, h) for v, h in items if isinstance(v, dict) and v.get(field) == expected]
    raise ValueError(kind)


def _parse_path(path: str, relative: bool) -> list[Callable[[list[Item]], list[Item]]] | None:
    """Steps of one union member, or None if outside the fast subset."""
    path = path.strip()
    m = _AS_PAREN.match(path)
    if m:
        path = f"{m[1]}.as({m[2]}){m[3]}"
    segments = _SEGMENT.split(path)
    steps = []
    start = 0
    if not relative:
        head = segments[0]
        if not re.fullmatch(r"[A-Z]\w*", head):
            return None
        start = 1
        steps.append(_type_check(head))
    for seg in segments[start:]:
        for pattern, kind in _STEP_PATTERNS:
            sm = pattern.fullmatch(seg)
            if sm:
                steps.append(_step(kind, sm.groups()))
                break
        else:
            return None
    return steps


def _type_check(head: str) -> Callable[[list[Item]], list[Item]]:
    if head in ("Resource", "DomainResource"):
        return lambda items: items
    return lambda items: [(v, h) for v, h in items if isinstance(v, dict) and v.get("resourceType") == head]


_FIELD = re.compile(r"\w+")


def _field_chain(path: str, relative: bool) -> Evaluator | None:
    """``Consent.provision.actor.reference``: a plain walk down fields, without the per-step item tuples and
    memo look-ups of the general chain (most search expressions are this shape). None for anything else.

    A name that is a choice element somewhere (``source``, ``value``) is looked up as :func:`_lookup` does:
    the field itself when present (``Meta.source``), else the prefix scan (``Consent.sourceReference``), whose
    type suffix is the hint of a last step — so ``Resource.meta.source`` and ``Consent.source`` need not take
    the general chain (issue #16).
    """
    segments = path.strip().split(".")
    if not all(_FIELD.fullmatch(seg) for seg in segments):
        return None
    head: str | None = None
    if not relative:
        if len(segments) < 2 or not re.fullmatch(r"[A-Z]\w*", segments[0]):
            return None
        head, segments = segments[0], segments[1:]
        if head in ("Resource", "DomainResource"):
            head = None
    choices = _choice_names()
    middle = tuple((name, name in choices) for name in segments[:-1])
    last, last_choice = segments[-1], segments[-1] in choices

    def run(resource: dict[str, Any]) -> list[Item]:
        if head is not None and (not isinstance(resource, dict) or resource.get("resourceType") != head):
            return []
        values: list[Any] = [resource]
        for name, choice in middle:
            found: list[Any] = []
            for v in values:
                if isinstance(v, dict):
                    child = v.get(name)
                    if child is None:
                        if choice:
                            found += [x for x, _ in _lookup(v, name)]
                        continue
                    if isinstance(child, list):
                        found += child
                    else:
                        found.append(child)
            if not found:
                return []
            values = found
        out: list[Item] = []
        for v in values:
            if isinstance(v, dict):
                child = v.get(last)
                if child is None:
                    if last_choice:
                        out += _lookup(v, last)
                elif isinstance(child, list):
                    out += [(c, None) for c in child]
                else:
                    out.append((child, None))
        return out

    return run


def _chain(steps: list[Callable[[list[Item]], list[Item]]]) -> Evaluator:
    def run(resource: dict[str, Any]) -> list[Item]:
        items: list[Item] = [(resource, None)]
        for step in steps:
            items = step(items)
            if not items:
                return items
        return items

    return run


def _fallback(expression: str) -> Evaluator:
    from fhirpathpy import compile as fp_compile
    from fhirpathpy.models import models

    compiled = fp_compile(expression, models["r4"])

    def run(resource: dict[str, Any]) -> list[Item]:
        try:
            return [(v, None) for v in compiled(resource, {})]
        except Exception:  # an expression outside fhirpathpy's reach indexes nothing rather than failing a write
            return []

    return run


_EXISTS_NOT_FALSE = re.compile(r"(\w+)\.(\w+)\.exists\(\) and \1\.\2 != false")


def _exists_not_false(name: str) -> Evaluator:
    """``Patient.deceased.exists() and Patient.deceased != false`` → [True] / [False] (the token ``deceased``)."""

    def run(resource: dict[str, Any]) -> list[Item]:
        values = _children(resource, name)
        return [(bool(values) and any(v is not False for v, _ in values), None)]

    return run


@cache
def compile_path(expression: str, relative: bool = False) -> Evaluator:
    """Compile once: a function resource → [(value, type_hint)]. ``relative``: no leading type name."""
    special = _EXISTS_NOT_FALSE.fullmatch(expression.strip())
    if special and not relative:
        type_check, inner = _type_check(special[1]), _exists_not_false(special[2])
        return lambda resource: inner(resource) if type_check([(resource, None)]) else []
    members = [m for m in re.split(r"\s\|\s", expression)]
    parsed = [_parse_path(m, relative) for m in members]
    if any(p is None for p in parsed):
        return _fallback(expression)
    chains = [_field_chain(m, relative) or _chain(p) for m, p in zip(members, parsed, strict=True) if p is not None]
    if len(chains) == 1:
        return chains[0]

    def union(resource: dict[str, Any]) -> list[Item]:
        out: list[Item] = []
        for c in chains:
            out += c(resource)
        return out

    return union


@cache
def top_fields(expression: str) -> frozenset[str] | None:
    """The resource's top-level elements an (absolute) expression can start from, or None when unknown.

    A resource without any of them yields nothing for the expression, so extraction skips it without
    evaluating: ``Consent.provision.actor.reference`` → {"provision"}. None for expressions outside the fast
    subset, the ``exists() and != false`` form, ``Resource.x`` steps we cannot name, and choice elements
    (``Observation.value`` is stored as ``valueQuantity``).
    """
    if _EXISTS_NOT_FALSE.fullmatch(expression.strip()):
        return None
    names: set[str] = set()
    for member in re.split(r"\s\|\s", expression):
        member = member.strip()
        m = _AS_PAREN.match(member)
        if m:
            member = f"{m[1]}.as({m[2]}){m[3]}"
        segments = _SEGMENT.split(member)
        if len(segments) < 2 or _parse_path(member, False) is None:
            return None  # outside the fast subset: fhirpathpy may yield values from nothing (``exists()``)
        first = next(((pattern.fullmatch(segments[1]), kind) for pattern, kind in _STEP_PATTERNS[:2]
                      if pattern.fullmatch(segments[1])), None)
        if first is None or first[0] is None:
            return None
        name = first[0].group(1)
        if name in _choice_names():
            return None
        names.add(name)
    return frozenset(names)


def evaluate_from(items: list[Item], expression: str) -> list[Item]:
    """Evaluate a relative expression (composite component) from each context item."""
    fn = compile_path(expression, relative=True)
    out: list[Item] = []
    for v, _ in items:
        if isinstance(v, dict):
            out += fn(v)
    return out
