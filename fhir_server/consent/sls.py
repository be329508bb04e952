"""Sensitivity labels implied by a resource's own codes (ACCESS.md §C) — pure, no I/O.

The ``ascmi-sls-<category>`` ValueSets are compiled once into a :class:`Labeller`: per code system, a dict of
exact codes and, for ICD-10 systems (hierarchical by prefix: ``F10`` ⊃ ``F10.2`` ⊃ ``F10.20``), a dict of
prefixes with the few prefix lengths that occur, so a coding costs one dict look-up per prefix length. Each
category is a bit; a resource's mask is the OR of its codings' masks, and the labels of a mask are cached.

Compose rules understood (anything else is reported in :attr:`Labeller.ignored` and does not label):
``include.concept`` (exact codes), ``include.filter`` ``is-a``/``=`` on property ``concept``/``code`` (an
ICD-10 ``is-a`` is the prefix rule; elsewhere the code itself — we hold no SNOMED/LOINC/RxNorm hierarchy) and
the same two in ``exclude``. ``42CFRPart2`` and ``PSYTHPN`` are never inferred from codes.

>>> vs = {"id": "ascmi-sls-hiv", "compose": {"include": [{"system": ICD10CM,
...       "filter": [{"property": "concept", "op": "is-a", "value": "B20"}]}]}}
>>> lab = compile_value_sets([vs], {"hiv": ({"system": ACT, "code": "HIV"},)})
>>> lab.labels({"resourceType": "Condition", "code": {"coding": [{"system": ICD10CM, "code": "B20.1"}]}})
({'system': 'http://terminology.hl7.org/CodeSystem/v3-ActCode', 'code': 'HIV'},)
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from fhir_server.consent.sls_elements import CODE_PATHS, CONSENT_DOCUMENT_CODES

ACT = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
ICD10 = "http://hl7.org/fhir/sid/icd-10"
PREFIX_SYSTEMS = frozenset({ICD10CM, ICD10})
VALUE_SET_PREFIX = "ascmi-sls-"
PART2 = {"system": ACT, "code": "42CFRPart2", "display": "42 CFR Part2"}
#: Labels a ValueSet may never make the server add (sent by a client, or Part 2 from its source, only).
NEVER_INFERRED = frozenset({(ACT, "42CFRPart2"), (ACT, "PSYTHPN")})

Coding = dict[str, Any]


def normalise(system: str, code: str) -> str:
    """ICD-10 codes compare without the dot and case-blind (``f10.20`` → ``F1020``); others as they are."""
    return code.replace(".", "").upper() if system in PREFIX_SYSTEMS else code


@dataclass(slots=True)
class _Table:
    exact: dict[str, int] = field(default_factory=dict)
    prefixes: dict[str, int] = field(default_factory=dict)
    lengths: tuple[int, ...] = ()

    def mask(self, code: str) -> int:
        found = self.exact.get(code, 0)
        if self.lengths:
            get = self.prefixes.get
            for n in self.lengths:
                if n <= len(code):
                    found |= get(code[:n], 0)
        return found


@dataclass(slots=True)
class Labeller:
    """Compiled ValueSets. ``categories[i]`` is bit ``1 << i``; ``key`` identifies the content compiled."""

    categories: tuple[str, ...]
    category_labels: tuple[tuple[Coding, ...], ...]
    include: dict[str, _Table]
    exclude: dict[str, _Table]
    key: tuple[Any, ...] = ()
    ignored: tuple[str, ...] = ()
    _by_mask: dict[int, tuple[Coding, ...]] = field(default_factory=dict)

    def mask(self, resource: Mapping[str, Any]) -> int:
        """The categories (bits) the resource's codes fall in."""
        paths = CODE_PATHS.get(str(resource.get("resourceType")))
        if paths is None or not self.include:
            return 0
        found = 0
        include, exclude = self.include, self.exclude
        for system, code in iter_codings(resource, paths):
            table = include.get(system)
            if table is None:
                continue
            code = normalise(system, code)
            bits = table.mask(code)
            if bits:
                out = exclude.get(system)
                found |= bits & ~out.mask(code) if out is not None else bits
        if found and resource.get("resourceType") == "DocumentReference" and is_consent_document(resource):
            return 0
        return found

    def labels_of(self, mask: int) -> tuple[Coding, ...]:
        cached = self._by_mask.get(mask)
        if cached is None:
            seen: dict[tuple[str, str], Coding] = {}
            for i, labels in enumerate(self.category_labels):
                if mask & (1 << i):
                    for lab in labels:
                        seen.setdefault((lab["system"], lab["code"]), lab)
            cached = self._by_mask[mask] = tuple(seen.values())
        return cached

    def labels(self, resource: Mapping[str, Any]) -> tuple[Coding, ...]:
        """The §2 labels the resource's codes imply (possibly already on it)."""
        return self.labels_of(self.mask(resource))


EMPTY = Labeller((), (), {}, {})


def nodes_at(resource: Mapping[str, Any], path: tuple[str, ...]) -> list[Any]:
    """The values reached by following ``path`` (element names) through ``resource``, arrays flattened at
    each step; absent elements are skipped."""
    nodes: list[Any] = [resource]
    for key in path:
        nxt: list[Any] = []
        for node in nodes:
            value = node.get(key) if isinstance(node, dict) else None
            if value is None:
                continue
            if isinstance(value, list):
                nxt.extend(value)
            else:
                nxt.append(value)
        nodes = nxt
        if not nodes:
            break
    return nodes


def iter_codings(resource: Mapping[str, Any], paths: Iterable[tuple[str, ...]]) -> Iterator[tuple[str, str]]:
    """(system, code) of every Coding reached by ``paths`` (each ends at a CodeableConcept or a Coding)."""
    for path in paths:
        nodes = nodes_at(resource, path)
        for node in nodes:
            if not isinstance(node, dict):
                continue
            codings = node.get("coding")
            if codings is None:
                codings = (node,)
            for c in codings if isinstance(codings, list | tuple) else ():
                if isinstance(c, dict):
                    system, code = c.get("system"), c.get("code")
                    if isinstance(system, str) and isinstance(code, str):
                        yield system, code


def is_consent_document(resource: Mapping[str, Any]) -> bool:
    paths = (("type",), ("category",))
    return any(pair in CONSENT_DOCUMENT_CODES for pair in iter_codings(resource, paths))


def _rule(inc: Mapping[str, Any], where: str, ignored: list[str]) -> tuple[str, list[str], list[str]] | None:
    """(system, exact codes, prefix codes) of one include/exclude, or None when it is not understood."""
    system = inc.get("system")
    if not isinstance(system, str) or inc.get("valueSet"):
        ignored.append(f"{where}: only a system with concepts or is-a filters is understood")
        return None
    exact = [c["code"] for c in inc.get("concept", ()) if isinstance(c, dict) and isinstance(c.get("code"), str)]
    prefixes: list[str] = []
    filters = inc.get("filter", ())
    if not exact and not filters:
        ignored.append(f"{where}: a whole code system cannot imply a label")
        return None
    for flt in filters:
        value, op = flt.get("value"), flt.get("op")
        if flt.get("property") not in ("concept", "code") or op not in ("is-a", "=") or not isinstance(value, str):
            ignored.append(f"{where}: filter {flt.get('property')} {op} {value} is not understood")
            return None
        (prefixes if op == "is-a" and system in PREFIX_SYSTEMS else exact).append(value)
    if len(filters) > 1:  # FHIR ANDs the filters of one include: keep the rule only when they agree
        ignored.append(f"{where}: several filters in one include; write one include per code")
        return None
    return system, exact, prefixes


def _add(tables: dict[str, _Table], system: str, exact: list[str], prefixes: list[str], bit: int) -> None:
    table = tables.setdefault(system, _Table())
    for code in exact:
        key = normalise(system, code)
        table.exact[key] = table.exact.get(key, 0) | bit
    for code in prefixes:
        key = normalise(system, code)
        table.prefixes[key] = table.prefixes.get(key, 0) | bit
    table.lengths = tuple(sorted({len(p) for p in table.prefixes}))


def compile_value_sets(value_sets: Iterable[Mapping[str, Any]],
                       category_labels: Mapping[str, tuple[Coding, ...]], key: tuple[Any, ...] = ()) -> Labeller:
    """Compile ``ascmi-sls-<category>`` ValueSets; ``category_labels`` maps a category to its §2 labels.

    A ValueSet whose category has no inferable label (Part 2, general health, an unknown category) is skipped
    and reported in ``ignored``.
    """
    categories: list[str] = []
    labels: list[tuple[Coding, ...]] = []
    include: dict[str, _Table] = {}
    exclude: dict[str, _Table] = {}
    ignored: list[str] = []
    for vs in value_sets:
        vs_id = str(vs.get("id", ""))
        category = vs_id.removeprefix(VALUE_SET_PREFIX)
        labs = tuple(lab for lab in category_labels.get(category, ())
                     if (lab.get("system"), lab.get("code")) not in NEVER_INFERRED and lab.get("code") != "N")
        if not labs:
            ignored.append(f"ValueSet/{vs_id}: category {category!r} has no label the server may infer")
            continue
        if category in categories:
            bit = 1 << categories.index(category)
        else:
            bit = 1 << len(categories)
            categories.append(category)
            labels.append(labs)
        compose = vs.get("compose") or {}
        for kind, tables in (("include", include), ("exclude", exclude)):
            for i, inc in enumerate(compose.get(kind, ())):
                rule = _rule(inc, f"ValueSet/{vs_id} compose.{kind}[{i}]", ignored)
                if rule is not None:
                    _add(tables, *rule, bit)
    return Labeller(tuple(categories), tuple(labels), include, exclude, key, tuple(ignored))


def merge(resource: dict[str, Any], added: Iterable[Coding]) -> dict[str, Any]:
    """The resource with ``added`` labels in ``meta.security`` (kept: everything already there; no duplicates).
    Returns ``resource`` itself when nothing is new, else a shallow copy with a new ``meta``."""
    meta = resource.get("meta")
    security = meta.get("security") if isinstance(meta, dict) else None
    present = {(s.get("system"), s.get("code")) for s in security or () if isinstance(s, dict)}
    new = []
    for lab in added:
        key = (lab.get("system"), lab.get("code"))
        if key not in present:
            present.add(key)
            new.append(dict(lab))
    if not new:
        return resource
    merged_meta = dict(meta) if isinstance(meta, dict) else {}
    merged_meta["security"] = [*(security if isinstance(security, list) else ()), *new]
    return {**resource, "meta": merged_meta}
