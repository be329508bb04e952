"""The rule book's tables, read once from ``fhir_server/data/consent-*.json`` for one canonical base.

The category ↔ label table, the legal floor, the purposes and the obligations are data so that a new ASCMI
form revision or a legal review is an edit of JSON, not of code. ``{base}`` in the files is the canonical base
setting (ASCMI.md §5: moving the base moves every local URL).

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

from fhir_server.consent.model import DEFAULT_CANONICAL_BASE, NETWORK_ORGANIZATION_ID, Coding

DATA_DIR = Path(__file__).resolve().parent.parent / "data"

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


@lru_cache(maxsize=8)
def load_tables(canonical_base: str = DEFAULT_CANONICAL_BASE) -> Tables:
    """Read the four tables once per canonical base (a deployment has one)."""
    base = canonical_base.rstrip("/")
    cats_raw, floor_raw = _read("consent-categories.json"), _read("consent-legal-floor.json")
    purposes_raw, obligations_raw = _read("consent-purposes.json"), _read("consent-obligations.json")

    categories: dict[str, Category] = {}
    label_index: dict[LabelKey, str] = {}
    for c in cats_raw["categories"]:
        labels = tuple(_coding(x, base) for x in c["labels"])
        absorbs = frozenset(_coding(x, base).key for x in c.get("absorbsWhenRequestedTogether", ()))
        categories[c["code"]] = Category(
            c["code"],
            c["display"],
            labels,
            frozenset(lab.key for lab in labels),
            bool(c["minorMayConsentAlone"]),
            absorbs,
        )
        for lab in labels:
            label_index[lab.key] = c["code"]
    never = {(cd := _coding(x, base)).key: cd for x in cats_raw["never"]}
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
    obligations = {
        cat: tuple(_coding(x, base) for x in lst) for cat, lst in obligations_raw["obligations"].items()
    }
    return Tables(
        base=base,
        categories=categories,
        default_category=cats_raw["defaultCategory"],
        label_index=label_index,
        label_by_code={code: keys[0] for code, keys in by_code.items() if len(keys) == 1},
        never=never,
        never_why=cats_raw["never"][0]["why"],
        purposes=purposes,
        purpose_index=purpose_index,
        tpo=tpo,
        purposes_never_on_floor=frozenset(p["purpose"] for p in floor_raw["purposesNeverOnFloor"]),
        floor_rows=rows,
        exclusions=exclusions,
        obligations=obligations,
    )
