"""Requested security labels → ASCMI categories (ASCMI.md §5 "Labels → categories").

Each category is decided once and every requested label carries its category's decision. Part 2 is the one
grouping that depends on the whole request: ``SUD``/``ETH`` asked together with ``42CFRPart2`` are Part 2
records, asked alone they are ordinary substance-use information. No label (or only ``N``) is general health.

>>> from fhir_server.consent.tables import load_tables
>>> ACT = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
>>> g = group_labels([Coding(ACT, "42CFRPart2"), Coding(ACT, "SUD")], load_tables())
>>> g.categories
('substance-use-part2',)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from fhir_server.consent.model import Coding
from fhir_server.consent.tables import LabelKey, Tables
from fhir_server.fhir.outcome import BadRequest

ACT = "http://terminology.hl7.org/CodeSystem/v3-ActCode"


class UnknownLabel(BadRequest):
    """A label outside the §2 table: the engine cannot say what information it is."""


@dataclass(frozen=True, slots=True)
class LabelGroups:
    labels: tuple[Coding, ...]  # the labels decided (the default N when none was requested)
    label_categories: tuple[str | None, ...]  # parallel to ``labels``; None = never shareable (PSYTHPN)
    categories: tuple[str, ...]  # distinct, in order of first appearance
    never: tuple[Coding, ...]


def canonical_key(label: Coding, tables: Tables) -> LabelKey:
    """Fill in a missing system when the code alone names one table label."""
    if label.system is not None:
        return label.key
    return tables.label_by_code.get(label.code, label.key)


def default_label(tables: Tables) -> Coding:
    return tables.categories[tables.default_category].labels[0]


def group_labels(labels: Sequence[Coding], tables: Tables) -> LabelGroups:
    """Group labels into categories; raises :class:`UnknownLabel` naming the first label not in the table."""
    if not labels:
        labels = (default_label(tables),)
    keys = [canonical_key(lab, tables) for lab in labels]
    direct: list[str | None] = []
    for i, (lab, key) in enumerate(zip(labels, keys, strict=True)):
        if tables.is_never(key):
            direct.append(None)
            continue
        cat = tables.category_of_label(key)
        if cat is None:
            raise UnknownLabel(
                f"label {lab.system or ''}#{lab.code} is not an ASCMI security label (§2 table)",
                (f"label[{i}]",),
                code="code-invalid",
            )
        direct.append(cat)
    present = set(direct)
    resolved: list[str | None] = []
    for key, cat in zip(keys, direct, strict=True):
        owner = next(
            (c.code for c in tables.categories.values() if c.code in present and key in c.absorbs), None
        )
        resolved.append(owner or cat)
    cats = tuple(dict.fromkeys(c for c in resolved if c is not None))
    never = tuple(lab for lab, c in zip(labels, resolved, strict=True) if c is None)
    return LabelGroups(tuple(labels), tuple(resolved), cats, never)
