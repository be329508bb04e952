"""The rule book's tables, read once per canonical base.

The categories (codes, displays, which ones a minor may consent to alone) and their security labels are the
FHIR terminology in ``profiles/`` and ``mappings/`` (CodeSystem ``ascmi-category``, ConceptMap
``ascmi-category-to-security-label``, read through :func:`fhir_server.ascmi.terminology.load_terminology`, the
loader the form mapping uses), and the never-shareable labels are the ValueSet ``ascmi-never-shareable``: one
copy, so the engine and the Consents the mapping writes cannot drift apart. ``fhir_server/data/consent-*.json``
hold the rest — how a request's labels group (the default category, Part 2 absorbing SUD/ETH asked with it),
the legal floor, the purposes and the obligations — so that a new ASCMI form revision or a legal review is an
edit of data, not of code. ``{base}`` in the JSON files is the canonical base setting (ASCMI.md §5: moving the
base moves every local URL).

>>> t = load_tables()
>>> t.category_of_label(("http://terminology.hl7.org/CodeSystem/v3-ActCode", "HIV"))
'hiv'
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from fhir_server.ascmi.canonical import rebase
from fhir_server.ascmi.terminology import DATA_ROOT, load_terminology
from fhir_server.consent.model import DEFAULT_CANONICAL_BASE, NETWORK_ORGANIZATION_ID, Coding

DATA_DIR = Path(__file__).resolve().parent.parent / "data"
#: Labels no ASCMI can release (rule 1), relative to the terminology's data root.
NEVER_SHAREABLE_VALUESET = "profiles/ValueSet-ascmi-never-shareable.json"

LabelKey = tuple[str | None, str]


@dataclass(frozen=True, slots=True)
class Category:
    code: str
    display: str
    labels: tuple[Coding, ...]
    label_keys: frozenset[LabelKey]
    minor_may_consent_alone: bool
    absorbs: frozenset[LabelKey]  # labels that join this category when requested together with it


@dataclass(frozen=True, slots=True)
class FloorRow:
    id: str
    categories: frozenset[str]
    regimes: frozenset[str]
    purposes: frozenset[str]
    recipient_type_not_in: frozenset[str]
    authority: str
    summary: str


@dataclass(frozen=True, slots=True)
class FloorExclusion:
    id: str
    categories: frozenset[str]
    recipient_state_not: str
    authority: str
    summary: str


@dataclass(frozen=True, slots=True)
class Purpose:
    code: str
    display: str
    codings: tuple[Coding, ...]


@dataclass(frozen=True, slots=True)
class Tables:
    base: str
    categories: dict[str, Category]
    default_category: str
    label_index: dict[LabelKey, str]
    label_by_code: dict[str, LabelKey]  # code → the one table label with that code (for system-less input)
    never: dict[LabelKey, Coding]
    never_why: str
    purposes: dict[str, Purpose]
    purpose_index: dict[LabelKey, str]
    tpo: frozenset[str]
    purposes_never_on_floor: frozenset[str]
    floor_rows: tuple[FloorRow, ...]
    exclusions: tuple[FloorExclusion, ...]
    obligations: dict[str, tuple[Coding, ...]]

    # -- canonical URLs (ASCMI.md §5) ------------------------------------------------------------------
    @property
    def form_system(self) -> str:
        return f"{self.base}/CodeSystem/ascmi-form"

    @property
    def non_sharing_forms(self) -> frozenset[str]:
        """ascmi-form codes that record no sharing choice (a confidential communications request, ASCMI.md §6):
        their Consents never govern (CodeSystem ascmi-form, property ``authorizes-sharing``)."""
        return load_terminology(self.base).non_sharing_forms

    @property
    def category_system(self) -> str:
        return f"{self.base}/CodeSystem/ascmi-category"

    @property
    def purpose_system(self) -> str:
        return f"{self.base}/CodeSystem/ascmi-purpose"

    @property
    def care_partner_type_system(self) -> str:
        return f"{self.base}/CodeSystem/care-partner-type"

    @property
    def network_identifier(self) -> tuple[str, str]:
        return (f"{self.base}/sid/care-partner-network", "ascmi")

    @property
    def network_id(self) -> str:
        return NETWORK_ORGANIZATION_ID

    @property
    def covered_entity_extension(self) -> str:
        return f"{self.base}/StructureDefinition/covered-entity"

    @property
    def expiration_event_extension(self) -> str:
        return f"{self.base}/StructureDefinition/ascmi-expiration-event"

    @property
    def minor_signature_extension(self) -> str:
        return f"{self.base}/StructureDefinition/ascmi-minor-signature"

    # -- look-ups -------------------------------------------------------------------------------------
    def category_of_label(self, key: LabelKey) -> str | None:
        """The category of a label; a label without system matches by code when that is unambiguous."""
        if key in self.label_index:
            return self.label_index[key]
        if key[0] is None:
            hits = {cat for (_, code), cat in self.label_index.items() if code == key[1]}
            return hits.pop() if len(hits) == 1 else None
        return None

    def is_never(self, key: LabelKey) -> bool:
        return key in self.never or (key[0] is None and any(code == key[1] for _, code in self.never))

    def purpose_of(self, key: LabelKey) -> str | None:
        """The purpose code (``TREAT`` … ``social-services``) a Coding names, or None when unknown."""
        if key in self.purpose_index:
            return self.purpose_index[key]
        if key[0] is None and key[1] in self.purposes:
            return key[1]
        return None


def _coding(raw: dict[str, Any], base: str) -> Coding:
    system = raw.get("system")
    return Coding(system.replace("{base}", base) if system else None, raw["code"], raw.get("display"))


def _read(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((DATA_DIR / name).read_text(encoding="utf-8"))
    return data


class TableError(ValueError):
    """The data files contradict each other (a category or label named in one is missing from another)."""


def _categories(base: str, cats_raw: dict[str, Any]) -> dict[str, Category]:
    """The §2 table from the CodeSystem + ConceptMap, with the JSON's request-grouping rule attached."""
    terminology = load_terminology(base)
    absorbs_raw: dict[str, list[dict[str, Any]]] = cats_raw.get("absorbsWhenRequestedTogether", {})
    unknown = sorted(set(absorbs_raw) - set(terminology.categories))
    if unknown:
        raise TableError(f"consent-categories.json names categories outside CodeSystem ascmi-category: {unknown}")
    categories: dict[str, Category] = {}
    for code, cat in terminology.categories.items():
        if not cat.labels:
            raise TableError(f"category {code} has no security label in ConceptMap ascmi-category-to-security-label")
        # Decisions compare labels by (system, code); the engine's label Codings carry no display, as before.
        labels = tuple(Coding(lab.system, lab.code) for lab in cat.labels)
        categories[code] = Category(
            code,
            cat.display,
            labels,
            frozenset(lab.key for lab in labels),
            cat.minor_may_consent,
            frozenset(_coding(x, base).key for x in absorbs_raw.get(code, ())),
        )
    return categories


def _never_shareable(base: str) -> dict[LabelKey, Coding]:
    """The codes enumerated by ValueSet ascmi-never-shareable (only ``compose.include.concept`` is supported)."""
    with open(DATA_ROOT / NEVER_SHAREABLE_VALUESET, encoding="utf-8") as f:
        vs: dict[str, Any] = rebase(json.load(f), base)
    compose = vs.get("compose", {})
    if compose.get("exclude") or any(
        "concept" not in inc or "filter" in inc or "valueSet" in inc for inc in compose.get("include", [])
    ):
        raise TableError(f"{NEVER_SHAREABLE_VALUESET}: list the never-shareable codes (include.concept only)")
    never: dict[LabelKey, Coding] = {}
    for inc in compose.get("include", []):
        for c in inc["concept"]:
            cd = Coding(inc["system"], c["code"], c.get("display"))
            never[cd.key] = cd
    return never


@lru_cache(maxsize=8)
def load_tables(canonical_base: str = DEFAULT_CANONICAL_BASE) -> Tables:
    """Read the tables once per canonical base (a deployment has one); raises :class:`TableError` on drift."""
    base = canonical_base.rstrip("/")
    cats_raw, floor_raw = _read("consent-categories.json"), _read("consent-legal-floor.json")
    purposes_raw, obligations_raw = _read("consent-purposes.json"), _read("consent-obligations.json")

    categories = _categories(base, cats_raw)
    label_index: dict[LabelKey, str] = {}
    for c in categories.values():
        for key in c.label_keys:
            if key in label_index:
                raise TableError(f"label {key[0]}#{key[1]} belongs to both {label_index[key]} and {c.code}")
        label_index.update((lab.key, c.code) for lab in c.labels)
    for c in categories.values():
        stray = sorted(k for k in c.absorbs if label_index.get(k, c.code) == c.code)
        if stray:
            raise TableError(f"{c.code} absorbs labels that are not another category's: {stray}")
    if cats_raw["defaultCategory"] not in categories:
        raise TableError(f"defaultCategory {cats_raw['defaultCategory']} is not in CodeSystem ascmi-category")
    never = _never_shareable(base)
    clash = sorted(k for k in never if k in label_index)
    if clash:
        raise TableError(f"labels both never shareable and in a category: {clash}")
    by_code: dict[str, list[LabelKey]] = {}
    for k in [*label_index, *never]:
        by_code.setdefault(k[1], []).append(k)

    purposes: dict[str, Purpose] = {}
    purpose_index: dict[LabelKey, str] = {}
    for p in purposes_raw["purposes"]:
        codings = tuple(_coding(x, base) for x in p["codings"])
        purposes[p["code"]] = Purpose(p["code"], p["display"], codings)
        for cd in codings:
            purpose_index[cd.key] = p["code"]

    tpo = frozenset(floor_raw["tpoPurposes"])
    rows = tuple(
        FloorRow(
            r["id"],
            frozenset(r["categories"]),
            frozenset(r["regimes"]),
            tpo if r["purposes"] == "TPO" else frozenset(r["purposes"]),
            frozenset(r.get("recipientTypeNotIn", ())),
            r["authority"],
            r["summary"],
        )
        for r in floor_raw["rows"]
    )
    exclusions = tuple(
        FloorExclusion(
            e["id"], frozenset(e["categories"]), e["recipientStateNot"].upper(), e["authority"], e["summary"]
        )
        for e in floor_raw["exclusions"]
    )
    obligations = {cat: tuple(_coding(x, base) for x in lst) for cat, lst in obligations_raw["obligations"].items()}
    named = {c for r in rows for c in r.categories} | {c for e in exclusions for c in e.categories} | set(obligations)
    if named - set(categories):
        raise TableError(
            f"legal floor / obligations name categories outside ascmi-category: {sorted(named - set(categories))}"
        )
    return Tables(
        base=base,
        categories=categories,
        default_category=cats_raw["defaultCategory"],
        label_index=label_index,
        label_by_code={code: keys[0] for code, keys in by_code.items() if len(keys) == 1},
        never=never,
        never_why=cats_raw["neverShareableWhy"],
        purposes=purposes,
        purpose_index=purpose_index,
        tpo=tpo,
        purposes_never_on_floor=frozenset(p["purpose"] for p in floor_raw["purposesNeverOnFloor"]),
        floor_rows=rows,
        exclusions=exclusions,
        obligations=obligations,
    )
