"""Rule 3: the legal floor — when the law lets a covered entity receive a category without consent.

The table itself is ``data/consent-legal-floor.json``; this module only walks it. Order of the checks matters
for the reason given: who the recipient is, then the purpose, then the out-of-state exclusion (AB 352), then
the row for the category under the regime.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from fhir_server.consent.model import RecipientFacts, Regime
from fhir_server.consent.tables import FloorExclusion, FloorRow, Tables

Why = Literal[
    "allowed",
    "not-covered-entity",
    "purpose-never-on-floor",
    "out-of-state",
    "no-row",
    "purpose-not-in-row",
    "recipient-type-excluded",
]


@dataclass(frozen=True, slots=True)
class FloorResult:
    allowed: bool
    why: Why
    row: FloorRow | None = None
    exclusion: FloorExclusion | None = None


def floor(
    category: str, purpose: str, regime: Regime, recipient: RecipientFacts, tables: Tables
) -> FloorResult:
    """Whether ``recipient`` may get ``category`` for ``purpose`` without consent under ``regime``."""
    if not (recipient.known and recipient.covered_entity):
        return FloorResult(False, "not-covered-entity")
    if purpose in tables.purposes_never_on_floor:
        return FloorResult(False, "purpose-never-on-floor")
    for ex in tables.exclusions:
        if category in ex.categories and recipient.in_state != ex.recipient_state_not:
            return FloorResult(False, "out-of-state", exclusion=ex)
    row = next((r for r in tables.floor_rows if category in r.categories and regime in r.regimes), None)
    if row is None:
        return FloorResult(False, "no-row")
    if purpose not in row.purposes:
        return FloorResult(False, "purpose-not-in-row", row)
    if recipient.type is not None and recipient.type in row.recipient_type_not_in:
        return FloorResult(False, "recipient-type-excluded", row)
    return FloorResult(True, "allowed", row)
