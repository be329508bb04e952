"""The AuditEvents of bulk export (ACCESS.md §B "Audit"), built with the shared BALP builders.

- **One per job** (when it completes or fails): :func:`fhir_server.security.audit.balp_event`, interaction
  ``export``, the kick-off URL as the query, outcome ``0`` (or ``8``: the server failed), the number of resources
  and files in ``outcomeDesc``.
- **The accounting of disclosures** for a Care Partner's job: what the export disclosed about each patient is
  gathered batch by batch from the gate's own reasons (``consent/disclosure.py``: labels, categories, basis) and
  written when the job completes as disclosure events (``consent.disclosure.disclosure_event``) of at most
  :data:`PATIENTS_PER_EVENT` patients each, so ``AuditEvent?patient=Patient/<id>`` lists the export like any read.
  An administrator's export lists no patients: it would mean parsing every stored resource, which an
  administrator's export never does (bytes are streamed as stored).
- **One per file download**: ``balp_event``, interaction ``export``, the file URL as the query.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fhir_server.consent import disclosure
from fhir_server.consent.gate import Gate
from fhir_server.security.audit import balp_event
from fhir_server.security.caller import Caller
from fhir_server.store.base import ResourceVersion

PATIENTS_PER_EVENT = 1000


def export_event(caller: Caller, query: str, outcome: str, description: str, base_url: str,
                 group: str | None = None) -> dict[str, Any]:
    """``outcome``: ``0`` success, ``4`` refused, ``8`` failed (the server's fault)."""
    return balp_event(caller, interaction="export", outcome=outcome, patients=(), query=query, base_url=base_url,
                      resources=[group] if group else (), description=description)


class Disclosures:
    """Per patient, what one Care Partner export disclosed (nothing is kept for administrators)."""

    def __init__(self, gate: Gate, caller: Caller) -> None:
        self.gate = gate
        self.caller = caller
        self.people: dict[str, Any] = {}

    def add(self, disclosed: Sequence[ResourceVersion]) -> None:
        if self.caller.is_administrator:
            return
        for pid, p in disclosure._collect(self.gate, self.caller, disclosed).items():  # noqa: SLF001 - one owner
            seen = self.people.get(pid)
            if seen is None:
                self.people[pid] = p
                continue
            seen.resources += p.resources
            seen.labels += [x for x in p.labels if x not in seen.labels]
            seen.categories += [x for x in p.categories if x not in seen.categories]
            seen.bases += [x for x in p.bases if x not in seen.bases]

    def events(self, query: str, base_url: str) -> list[dict[str, Any]]:
        ids = list(self.people)
        return [disclosure.disclosure_event(self.caller, interaction="operation", query=query,
                                            people={pid: self.people[pid] for pid in ids[i:i + PATIENTS_PER_EVENT]},
                                            base_url=base_url, canonical_base=self.gate.settings.canonical_base)
                for i in range(0, len(ids), PATIENTS_PER_EVENT)]
