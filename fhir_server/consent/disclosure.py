"""The accounting of disclosures: one IHE BALP AuditEvent per response that returns patient data (ACCESS.md §B).

Shape: the shared BALP builder (:func:`fhir_server.security.audit.balp_event`: ``type`` ``rest``, ``subtype`` the
interaction, agents = the client with ``purposeOfUse``, its Organization and this server; entities = each patient
and the query), outcome ``0``; each patient entity also carries the §2 labels disclosed in ``securityLabel``
(``N`` for general health) and, in ``detail``, each ASCMI category (``ascmi-category``) and each basis
(``ascmi-basis``: ``consent Consent/<id>/_history/<vid>``, ``legal-floor``, ``consent-record``) — what
``fhir-server ascmi disclosures`` reports in plain language.

Events are written behind the answer by the write-behind writer (group commits), as decision audits are.
The local administrator of ``FHIR_AUTH=off`` (and the server's own work) is not a client and is not audited.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fhir_server.consent.compartment import compartment_params, patients_of
from fhir_server.consent.gate import Gate
from fhir_server.consent.model import DEFAULT_CANONICAL_BASE, Coding
from fhir_server.consent.tables import load_tables
from fhir_server.fhir import jsonio
from fhir_server.repository.writebehind import WriteBehind
from fhir_server.security.audit import OUTCOME_SUCCESS, balp_event
from fhir_server.security.caller import ADMINISTRATOR, Caller
from fhir_server.store.base import ResourceVersion

DETAIL_CATEGORY = "ascmi-category"  # entity.detail.type: an ASCMI category disclosed about that patient
DETAIL_BASIS = "ascmi-basis"  # entity.detail.type: the basis it was disclosed on
CONFIDENTIALITY = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"


class _Patient:
    def __init__(self) -> None:
        self.labels: list[Coding] = []
        self.categories: list[str] = []
        self.bases: list[str] = []
        self.resources = 0


def _labels_of(resource: dict[str, Any], canonical_base: str) -> list[Coding]:
    tables = load_tables(canonical_base)
    out = []
    for c in (resource.get("meta") or {}).get("security") or []:
        key = (c.get("system"), c.get("code"))
        if isinstance(c, dict) and isinstance(key[1], str) and tables.category_of_label(key) is not None:
            out.append(Coding(key[0], key[1]))
    return out


def _collect(gate: Gate, caller: Caller, versions: Sequence[ResourceVersion]) -> dict[str, _Patient]:
    tables = gate.tables
    people: dict[str, _Patient] = {}
    for v in versions:
        if v.body is None or v.resource_type == "AuditEvent" or not compartment_params(v.resource_type):
            continue  # not patient data (an audit trail read back is not itself a disclosure to account for)
        bases: tuple[str, ...] = ()
        if caller.is_administrator:
            body = jsonio.loads(v.body)
            patients, labels = patients_of(body), _labels_of(body, gate.settings.canonical_base)
        else:
            why = gate.disclosure(caller, v)
            if why is None:
                continue
            patients, labels, bases = why.patients, list(why.labels), why.bases
        categories = [tables.category_of_label(lab.key) or tables.default_category for lab in labels] or \
            [tables.default_category]
        for i, pid in enumerate(patients):
            p = people.setdefault(pid, _Patient())
            p.resources += 1
            p.labels += [lab for lab in labels if lab not in p.labels]
            p.categories += [c for c in categories if c not in p.categories]
            if i < len(bases) and bases[i] not in p.bases:
                p.bases.append(bases[i])
    return people


_BALP_INTERACTION = {"search-type": "search", "search-system": "search-system", "history-instance": "history",
                     "history-type": "history", "history-system": "history"}


def disclosure_event(caller: Caller, *, interaction: str, query: str, people: dict[str, Any], base_url: str = "",
                     canonical_base: str = DEFAULT_CANONICAL_BASE) -> dict[str, Any]:
    """The BALP AuditEvent of one response (``people``: patient id → what went out about them), built by the
    shared :func:`fhir_server.security.audit.balp_event` and completed with what was disclosed per patient."""
    event = balp_event(caller, interaction=_BALP_INTERACTION.get(interaction, interaction), outcome=OUTCOME_SUCCESS,
                       patients=[f"Patient/{pid}" for pid in people], query=query, base_url=base_url,
                       description=f"{sum(p.resources for p in people.values())} resource(s) disclosed",
                       canonical_base=canonical_base)
    for entity in event.get("entity", []):
        ref = (entity.get("what") or {}).get("reference", "")
        p = people.get(ref.removeprefix("Patient/")) if ref.startswith("Patient/") else None
        if p is None:
            continue
        entity["securityLabel"] = [lab.to_json() for lab in p.labels] or [{"system": CONFIDENTIALITY, "code": "N"}]
        entity["description"] = f"{p.resources} resource(s) disclosed"
        entity["detail"] = [{"type": DETAIL_CATEGORY, "valueString": c} for c in p.categories] + \
            [{"type": DETAIL_BASIS, "valueString": b} for b in p.bases]
    return event


def record(audit: WriteBehind | None, gate: Gate, caller: Caller, interaction: str, query: str,
           versions: Sequence[ResourceVersion], base_url: str | None = None) -> None:
    """Queue the disclosure AuditEvent of a response, when it returned patient data to a client (``base_url``:
    the FHIR base the client called, named in the event's source; default the configured public base)."""
    if audit is None or caller == ADMINISTRATOR:
        return
    people = _collect(gate, caller, versions)
    if people:
        audit.submit(disclosure_event(caller, interaction=interaction, query=query, people=people,
                                      base_url=base_url or gate.settings.base_url or "",
                                      canonical_base=gate.settings.canonical_base))


def is_disclosure(event: dict[str, Any]) -> bool:
    """Is this AuditEvent one of :func:`record`'s (a patient entity with a disclosed category)?"""
    return any(d.get("type") == DETAIL_CATEGORY for e in event.get("entity") or [] for d in e.get("detail") or [])
