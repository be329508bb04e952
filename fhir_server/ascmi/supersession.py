"""Supersession by signed date, whatever the arrival order (ASCMI.md §3, §5).

The later-signed ASCMI Consent wins (a tie goes to the one recorded last, i.e. the new one). A new form
supersedes every *active* ASCMI Consent of the person signed on or before it (forms and revocations alike):
each gets a new version, ``inactive`` with ``period.end`` = the day before the new signed date, plus a
Provenance saying why. A new form signed before one already on file is itself stored ``inactive`` with
``period.end`` = the day before the next-newer one's signed date, so it governs only the days it really
governed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from fhir_server.ascmi import provenance
from fhir_server.ascmi.bundle import TransactionBuilder, weak_etag
from fhir_server.ascmi.consents import can_govern, closed, closing_end, form_type, signed_date
from fhir_server.ascmi.stored import Stored
from fhir_server.ascmi.terminology import Terminology


@dataclass(frozen=True, slots=True)
class Supersession:
    superseded: tuple[tuple[Stored, date], ...]  # existing Consent → its new period.end
    newer: Stored | None  # the next-newer Consent on file when the new one is older, else None

    def new_end(self, new_consent: dict[str, Any]) -> date | None:
        """The period.end the new Consent must be stored with (None: it is in force, stays active)."""
        if self.newer is None:
            return None
        return closing_end(new_consent, signed_date(self.newer.resource))


def plan(signed: date, existing: Sequence[Stored], *, terminology: Terminology) -> Supersession:
    """Decide what a new ASCMI Consent signed on ``signed`` does to the person's Consents on file."""
    ascmi = [s for s in existing if form_type(s.resource, terminology) and can_govern(s.resource)]
    superseded = tuple(
        (s, closing_end(s.resource, signed))
        for s in ascmi
        if s.resource.get("status") == "active" and signed_date(s.resource) <= signed
    )
    newer = sorted((s for s in ascmi if signed_date(s.resource) > signed), key=lambda s: signed_date(s.resource))
    return Supersession(superseded, newer[0] if newer else None)


def apply_to_new(consent: dict[str, Any], decision: Supersession) -> dict[str, Any]:
    end = decision.new_end(consent)
    if end is None:
        return consent
    consent["status"] = "inactive"
    consent["provision"]["period"]["end"] = end.isoformat()
    return consent


def add_entries(
    builder: TransactionBuilder,
    decision: Supersession,
    *,
    cause: str,
    cause_type: str,
    signed: date,
    agent: str,
    agent_display: str,
    now: datetime,
    terminology: Terminology,
) -> None:
    """PUT each superseded Consent (If-Match its version) and a Provenance saying which form superseded it."""
    reason_coding = terminology.form_types[cause_type].to_json()
    for stored, end in decision.superseded:
        builder.put(closed(dict(stored.resource), end, consent_id=stored.id), if_match=weak_etag(stored.version_id))
        reason = {
            "coding": [reason_coding],
            "text": f"superseded by the ASCMI form signed {signed.isoformat()}",
        }
        builder.post(
            provenance.update(
                target=stored.reference,
                occurred=signed.isoformat(),
                now=now,
                reason=reason,
                agent=agent,
                agent_display=agent_display,
                cause=cause,
            )
        )
