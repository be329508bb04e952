"""ASCMI code lists, loaded from the data files in ``profiles/`` and ``mappings/``.

Every list a new DHCS form revision may change (categories and their security labels, purposes, Care Partner
types, which categories a minor may consent to alone) is read here from FHIR CodeSystems, ValueSets and
ConceptMaps, so such a change is a data change. The form JSON Schemas get their code enums injected from the
same CodeSystems, so the schema and the terminology cannot drift apart.

Loading reads files (once per canonical base, cached); everything built from a :class:`Terminology` is pure.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from fhir_server.ascmi.canonical import DEFAULT_BASE, Canonical, rebase

#: The repository root that holds ``profiles/`` and ``mappings/`` (a deployment may pass another root).
DATA_ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True, slots=True)
class Coding:
    system: str
    code: str
    display: str | None = None

    def to_json(self) -> dict[str, str]:
        out = {"system": self.system, "code": self.code}
        if self.display:
            out["display"] = self.display
        return out


@dataclass(frozen=True, slots=True)
class Category:
    """One ASCMI category: its code, the security labels a provision carries, and the minor-consent rule."""

    code: str
    display: str
    labels: tuple[Coding, ...]
    minor_may_consent: bool
    minor_minimum_age: int | None


@dataclass(frozen=True, slots=True, eq=False)
class Terminology:
    """Loaded once per canonical base; compared and hashed by identity (it holds the schemas as dicts)."""

    canonical: Canonical
    categories: Mapping[str, Category]
    purposes: Mapping[str, Coding]
    care_partner_types: Mapping[str, Coding]
    form_types: Mapping[str, Coding]
    expiration_events: Mapping[str, Coding]
    relationships: Mapping[str, tuple[Coding, ...]]
    signature_methods: Mapping[str, Coding]
    form_schema: Mapping[str, Any]
    revocation_schema: Mapping[str, Any]
    #: ascmi-form codes whose ``authorizes-sharing`` property is false (a confidential communications request):
    #: their Consents record no sharing choice and never govern a decision.
    non_sharing_forms: frozenset[str] = frozenset()

    @property
    def base(self) -> str:
        return self.canonical.base


def _read(root: Path, rel: str, base: str) -> dict[str, Any]:
    with open(root / rel, encoding="utf-8") as f:
        return rebase(json.load(f), base)


def _concepts(cs: dict[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    stack = list(reversed(cs.get("concept", [])))
    while stack:
        c = stack.pop()
        out.append(c)
        stack.extend(reversed(c.get("concept", [])))
    return out


def _prop(concept: dict[str, Any], code: str) -> Any:
    for p in concept.get("property", []):
        if p["code"] == code:
            return next(v for k, v in p.items() if k.startswith("value"))
    return None


def _codings(cs: dict[str, Any]) -> dict[str, Coding]:
    return {c["code"]: Coding(cs["url"], c["code"], c.get("display")) for c in _concepts(cs)}


def _targets(cm: dict[str, Any]) -> dict[str, list[Coding]]:
    """source code → target Codings (every group, ``unmatched`` skipped), in file order."""
    out: dict[str, list[Coding]] = {}
    for group in cm.get("group", []):
        for element in group.get("element", []):
            for t in element.get("target", []):
                if t.get("equivalence") not in ("unmatched", "disjoint") and "code" in t:
                    out.setdefault(element["code"], []).append(Coding(group["target"], t["code"], t.get("display")))
    return out


def _inject(schema: dict[str, Any], enums: dict[str, list[str]]) -> dict[str, Any]:
    defs = schema.get("$defs", {})
    for name, codes in enums.items():
        if name in defs:
            defs[name] = {**defs[name], "enum": codes}
    return schema


@lru_cache(maxsize=8)
def load_terminology(canonical_base: str = DEFAULT_BASE, root: Path | None = None) -> Terminology:
    """Read the ASCMI data files under ``root`` with every default-base URL moved to ``canonical_base``."""
    root = root or DATA_ROOT
    canonical = Canonical(canonical_base)
    base = canonical.base
    cat_cs = _read(root, "profiles/CodeSystem-ascmi-category.json", base)
    labels = _targets(_read(root, "mappings/ascmi-category-to-security-label.json", base))
    categories = {
        c["code"]: Category(
            c["code"],
            c.get("display", c["code"]),
            tuple(labels.get(c["code"], ())),
            bool(_prop(c, "minor-may-consent")),
            _prop(c, "minor-minimum-age"),
        )
        for c in _concepts(cat_cs)
    }
    purpose_vs = _read(root, "profiles/ValueSet-ascmi-purpose.json", base)
    purpose_map = _read(root, "mappings/ascmi-purpose-to-v3-actreason.json", base)
    allowed: list[str] = []
    for include in purpose_vs["compose"]["include"]:
        if "concept" in include:
            allowed += [c["code"] for c in include["concept"]]
        else:
            allowed += [c["code"] for c in _concepts(_read(root, _file_of(include["system"], base), base))]
    # The first target of each purpose is the Coding the Consent carries (same system when one is listed).
    by_code: dict[str, Coding] = {}
    for group in purpose_map["group"]:
        if group["source"] != group["target"]:
            continue
        for element in group["element"]:
            t = element["target"][0]
            by_code.setdefault(element["code"], Coding(group["target"], t["code"], t.get("display")))
    purposes = {code: by_code[code] for code in allowed}
    rel_cs = _read(root, "profiles/CodeSystem-ascmi-representative-relationship.json", base)
    rel_map = _targets(_read(root, "mappings/ascmi-representative-to-v3-rolecode.json", base))
    relationships = {code: (*rel_map.get(code, ()), local) for code, local in _codings(rel_cs).items()}
    types = _codings(_read(root, "profiles/CodeSystem-care-partner-type.json", base))
    events = _codings(_read(root, "profiles/CodeSystem-ascmi-expiration-event.json", base))
    form_cs = _read(root, "profiles/CodeSystem-ascmi-form.json", base)
    enums = {
        "categoryCode": list(categories),
        "purposeCode": list(purposes),
        "carePartnerType": list(types),
        "expirationEvent": list(events),
        "relationship": list(relationships),
    }
    return Terminology(
        canonical=canonical,
        categories=categories,
        purposes=purposes,
        care_partner_types=types,
        form_types=_codings(form_cs),
        expiration_events=events,
        relationships=relationships,
        signature_methods=_codings(_read(root, "profiles/CodeSystem-ascmi-signature-method.json", base)),
        form_schema=_inject(_read(root, "profiles/ascmi-form.schema.json", base), enums),
        revocation_schema=_read(root, "profiles/ascmi-revocation.schema.json", base),
        non_sharing_forms=frozenset(c["code"] for c in _concepts(form_cs) if _prop(c, "authorizes-sharing") is False),
    )


def _file_of(system: str, base: str) -> str:
    prefix = f"{base}/CodeSystem/"
    if not system.startswith(prefix):
        raise ValueError(f"ValueSet ascmi-purpose includes a whole external system {system}; list its codes")
    return f"profiles/CodeSystem-{system[len(prefix) :]}.json"


def conformance_resources(canonical_base: str = DEFAULT_BASE, root: Path | None = None) -> list[dict[str, Any]]:
    """Every FHIR resource in ``profiles/`` and ``mappings/`` (rebased), to load into the server at
    start-up."""
    root = root or DATA_ROOT
    out = []
    for folder in ("profiles", "mappings"):
        for path in sorted((root / folder).glob("*.json")):
            if path.name.endswith(".schema.json"):
                continue
            out.append(_read(root, f"{folder}/{path.name}", canonical_base))
    return out
