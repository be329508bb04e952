"""Hand-built ASCMI Consents and recipients in the shape of ASCMI.md §3/§5, for the pure engine tests.

The ASCMI mapping (fhir_server/ascmi) produces the same shape from forms; these builders let the rule book be
tested without it. Root ``provision``: ``deny``, ``period`` signed…expiry; nested: one ``permit`` per shared
category (labels, purposes, actor = the network with role IRCP, or each included Care Partner), one ``deny``
per do-not-share category (labels only), one ``deny`` per excluded Care Partner (actor only).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from datetime import date
from typing import Any

from fhir_server.consent.model import ConsentVersion, Identifier, Membership, RecipientFacts
from fhir_server.consent.tables import load_tables

BASE = "https://ascmi.example.org/fhir"
ACT = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
ACT_REASON = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
NPI = "http://hl7.org/fhir/sid/us-npi"
NETWORK = "Organization/ascmi-care-partner-network"
TPO = ("TREAT", "COC", "CAREMGT", "HPAYMT", "HOPERAT")
ALL_PURPOSES = (*TPO, "social-services")
TABLES = load_tables(BASE)
CATEGORIES = tuple(TABLES.categories)
_seq = itertools.count(1)


def purpose_coding(code: str) -> dict[str, str]:
    system = f"{BASE}/CodeSystem/ascmi-purpose" if code == "social-services" else ACT_REASON
    return {"system": system, "code": code}


def labels_of(category: str) -> list[dict[str, str]]:
    return [lab.to_json() for lab in TABLES.categories[category].labels]


def _actor(ref: str) -> dict[str, Any]:
    role = {
        "coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "code": "IRCP"}]
    }
    if ref.startswith("npi:"):
        return {"role": role, "reference": {"identifier": {"system": NPI, "value": ref[4:]}}}
    return {"role": role, "reference": {"reference": ref}}


def form(
    *,
    form_type: str = "NON-AB133",
    signed: str = "2025-01-10",
    expires: str | None = "2026-01-10",
    event: str | None = None,
    share: Iterable[str] = CATEGORIES,
    purposes: Sequence[str] = ALL_PURPOSES,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    minor_signed: Iterable[str] = (),
    status: str = "active",
    period_end: str | None = None,
    version: str = "1",
    recorded: str | int | None = None,
    id: str | None = None,
) -> ConsentVersion:
    """An ASCMI form Consent. ``include`` empty = all Care Partners (the network); ``npi:<n>`` = an NPI."""
    shared = list(dict.fromkeys(share))
    minor = set(minor_signed)
    actors = [_actor(ref) for ref in include] or [_actor(NETWORK)]
    nested: list[dict[str, Any]] = []
    for cat in shared:
        p: dict[str, Any] = {
            "type": "permit",
            "actor": actors,
            "action": [
                {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentaction", "code": c}]}
                for c in ("access", "disclose")
            ],
            "securityLabel": labels_of(cat),
            "purpose": [purpose_coding(x) for x in purposes],
        }
        if cat in minor:
            p["extension"] = [
                {"url": f"{BASE}/StructureDefinition/ascmi-minor-signature", "valueDate": signed}
            ]
        nested.append(p)
    nested += [{"type": "deny", "securityLabel": labels_of(cat)} for cat in CATEGORIES if cat not in shared]
    nested += [{"type": "deny", "actor": [_actor(ref)]} for ref in exclude]
    period: dict[str, str] = {"start": signed}
    end = period_end or expires
    if end:
        period["end"] = end
    root: dict[str, Any] = {"type": "deny", "period": period, "provision": nested}
    if event:
        root["extension"] = [
            {"url": f"{BASE}/StructureDefinition/ascmi-expiration-event", "valueCode": event}
        ]
    return _consent(id, form_type, signed, status, root, version, recorded)


def revocation(
    *, signed: str, effective: str | None = None, id: str | None = None, recorded: str | int | None = None
) -> ConsentVersion:
    """The revocation Consent on file: root deny from the effective date, a nested deny for every category."""
    nested = [{"type": "deny", "securityLabel": labels_of(cat)} for cat in CATEGORIES]
    root = {"type": "deny", "period": {"start": effective or signed}, "provision": nested}
    return _consent(id, "REVOCATION", signed, "active", root, "1", recorded)


def revoked(original: ConsentVersion, *, end: str) -> ConsentVersion:
    """The revoked (or superseded) version of a form: inactive, period.end = the day before the effect."""
    res = {**original.resource, "status": "inactive"}
    res["provision"] = {**res["provision"], "period": {**res["provision"]["period"], "end": end}}
    nxt = str(int(original.version_id) + 1)
    res["meta"] = {**res["meta"], "versionId": nxt}
    return ConsentVersion.from_resource(res, recorded=original.recorded)


def _consent(
    id: str | None,
    form_type: str,
    signed: str,
    status: str,
    root: dict[str, Any],
    version: str,
    recorded: str | int | None,
) -> ConsentVersion:
    cid = id or f"c{next(_seq)}"
    form_coding = {"system": f"{BASE}/CodeSystem/ascmi-form", "code": form_type}
    res = {
        "resourceType": "Consent",
        "id": cid,
        "meta": {"versionId": version, "lastUpdated": "2025-01-01T00:00:00Z"},
        "status": status,
        "scope": {
            "coding": [
                {"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}
            ]
        },
        "category": [
            {"coding": [{"system": "http://loinc.org", "code": "64292-6"}]},
            {"coding": [form_coding]},
        ],
        "patient": {"reference": "Patient/p1"},
        "dateTime": signed,
        "organization": [{"reference": "Organization/collector"}],
        "policyRule": {"coding": [form_coding]},
        "provision": root,
    }
    return ConsentVersion.from_resource(res, recorded=recorded if recorded is not None else next(_seq))


def party(
    org_id: str | None = "clinic",
    *,
    covered: bool = True,
    type: str = "provider",
    state: str | None = None,
    member: tuple[str | None, str | None] | None = ("2024-01-01", None),
    member_active: bool = True,
    npi: str = "1111111111",
) -> RecipientFacts:
    """Recipient facts; ``org_id`` None = unknown to the server (not a covered entity, no membership)."""
    idents = (Identifier(NPI, npi),)
    if org_id is None:
        return RecipientFacts(identifiers=idents)
    memberships: tuple[Membership, ...] = ()
    if member is not None:
        start, end = (date.fromisoformat(x) if x else None for x in member)
        memberships = (Membership(start=start, end=end, active=member_active),)
    return RecipientFacts(
        identifiers=idents,
        known=True,
        organization_ids=(org_id,),
        covered_entity=covered,
        type=type,
        state=state,
        memberships=memberships,
    )
