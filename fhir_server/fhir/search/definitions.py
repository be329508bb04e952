"""The R4 search parameter definitions, loaded once from ``fhir_server/data/search-parameters.json``.

The data file is derived from the official R4 ``search-parameters.json`` by
``scripts/derive_search_parameters.py``; nothing here hard-codes a parameter name except the server-level ones
that the resource table serves directly (``_id``, ``_lastUpdated``).

>>> params_for("Consent")["patient"].target
('Patient',)
>>> params_for("Consent")["_tag"].type
'token'
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

PROFILES = Path(__file__).resolve().parents[3] / "profiles"
DATA = Path(__file__).resolve().parent.parent.parent / "data" / "search-parameters.json"

R4_SEARCH_PARAMETER = "http://hl7.org/fhir/SearchParameter"

# Served by columns of the resource table, not by index rows.
RESOURCE_COLUMNS = frozenset({"_id", "_lastUpdated"})


@dataclass(frozen=True, slots=True)
class Component:
    param: str  # code of the component's own parameter (on the same resource type)
    expression: str  # FHIRPath relative to the composite's context element


@dataclass(frozen=True, slots=True)
class SearchParam:
    code: str
    type: str  # number | date | string | token | reference | composite | quantity | uri
    expression: str
    target: tuple[str, ...] = ()
    datatypes: tuple[str, ...] = ()
    component: tuple[Component, ...] = ()
    system: str | None = None  # token on a code element: the code system of its required binding


def _param(code: str, raw: dict[str, Any]) -> SearchParam:
    return SearchParam(
        code=code,
        type=raw["type"],
        expression=raw["expression"],
        target=tuple(raw.get("target", ())),
        datatypes=tuple(raw.get("datatypes", ())),
        component=tuple(Component(c["param"], c["expression"]) for c in raw.get("component", ())),
        system=raw.get("system"),
    )


@cache
def _data() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DATA.read_text())
    for level, code, raw, replaces in _server_parameters():
        params = data["params"].setdefault(level, {})
        if replaces:
            params[code] = raw
        else:
            params.setdefault(code, raw)
    return data


def _server_parameters() -> list[tuple[str, str, dict[str, Any], bool]]:
    """This server's own SearchParameters, published in ``profiles/`` (e.g. Consent ``provision-actor``):
    the same resources a client reads at ``GET /fhir/SearchParameter``, so what is searchable is one list.

    One that is ``derivedFrom`` the R4 definition of the same code replaces it (Task ``period`` also indexes
    the due date of confidential communications Tasks); any other never shadows an R4 parameter."""
    found = []
    for path in sorted(PROFILES.glob("SearchParameter-*.json")) if PROFILES.is_dir() else []:
        sp = json.loads(path.read_text())
        raw = {"type": sp["type"], "expression": sp["expression"], "target": sp.get("target", [])}
        found += [(level, sp["code"], raw, sp.get("derivedFrom") == f"{R4_SEARCH_PARAMETER}/{level}-{sp['code']}")
                  for level in sp.get("base", [])]
    return found


@cache
def resource_types() -> frozenset[str]:
    """The concrete R4 resource types (147 in the source data)."""
    return frozenset(_data()["resourceTypes"])


@cache
def choice_elements() -> frozenset[str]:
    """Element names that are choices in some type (``value`` for ``value[x]``)."""
    return frozenset(_data()["choiceElements"])


@cache
def params_for(resource_type: str) -> dict[str, SearchParam]:
    """All search parameters of ``resource_type`` (Resource- and DomainResource-level ones included).

    Unknown types get the Resource-level parameters only (the caller validates the type itself).
    """
    data = _data()
    levels = ["Resource"]
    if resource_type not in data["domainResourceExclusions"]:
        levels.append("DomainResource")
    levels.append(resource_type)
    out: dict[str, SearchParam] = {}
    for level in levels:
        for code, raw in data["params"].get(level, {}).items():
            out[code] = _param(code, raw)
    return out


def param(resource_type: str, code: str) -> SearchParam | None:
    return params_for(resource_type).get(code)


@lru_cache(maxsize=256)
def common_params(types: tuple[str, ...]) -> dict[str, SearchParam]:
    """Parameters usable across several types (``_type`` system search): same code and type on every one.

    Bounded: the key is the client's ``_type`` list, and its combinations are unlimited."""
    if not types:
        return params_for("Resource")
    first, *rest = types
    out = {}
    for code, p in params_for(first).items():
        others = [params_for(t).get(code) for t in rest]
        if all(o is not None and o.type == p.type for o in others):
            out[code] = p
    return out


@cache
def reference_params(resource_type: str) -> tuple[SearchParam, ...]:
    """Reference parameters of a type (``_include=Type:*``)."""
    return tuple(p for p in params_for(resource_type).values() if p.type == "reference")


@cache
def search_includes(resource_type: str) -> tuple[str, ...]:
    """``_include`` values a search of ``resource_type`` accepts: ``Type:*`` and one per reference parameter.

    >>> search_includes("Consent")[:3]
    ('Consent:*', 'Consent:actor', 'Consent:consentor')
    """
    codes = sorted(p.code for p in reference_params(resource_type))
    return (f"{resource_type}:*", *(f"{resource_type}:{code}" for code in codes))


@cache
def _revincludes() -> dict[str, tuple[str, ...]]:
    by_target: dict[str, set[str]] = {}
    every = resource_types()
    for source in sorted(every):
        for p in reference_params(source):
            for target in p.target or every:
                by_target.setdefault(target, set()).add(f"{source}:{p.code}")
    return {target: tuple(sorted(values)) for target, values in by_target.items()}


def search_revincludes(resource_type: str) -> tuple[str, ...]:
    """``_revinclude`` values that can bring resources pointing at ``resource_type``: ``Source:param`` for
    every reference parameter (of any type) whose targets include it."""
    return _revincludes().get(resource_type, ())
