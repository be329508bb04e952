"""Provenance for ASCMI Consents: who signed, who collected, and why a Consent version changed.

Signatures on paper carry a date, not an instant; ``Signature.when`` is an instant, so a signature date
becomes the start of that day in the server time zone (``tz``), which keeps its calendar date wherever it is
displayed in California.
"""

from __future__ import annotations

import copy
from datetime import date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from fhir_server.ascmi.terminology import Terminology
from fhir_server.ascmi.vocab import (
    ACTIVITY_CREATE,
    ACTIVITY_UPDATE,
    AGENT_ATTESTER,
    AGENT_CUSTODIAN,
    CONSENT_SIGNATURE,
)


def day_start(day: date, tz: str) -> str:
    """``2025-03-01`` → ``2025-03-01T00:00:00-08:00`` in ``tz``."""
    return datetime.combine(day, time(0), ZoneInfo(tz)).isoformat()


def instant(now: datetime) -> str:
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    return now.isoformat(timespec="seconds")


def signature(
    *, when: date, who: str, on_behalf_of: str | None, method: str | None, tz: str, terminology: Terminology
) -> dict[str, Any]:
    sig: dict[str, Any] = {}
    if method:
        sig["extension"] = [
            {"url": terminology.canonical.structuredefinition("ascmi-signature-method"), "valueCode": method}
        ]
    sig.update({"type": [dict(CONSENT_SIGNATURE)], "when": day_start(when, tz), "who": {"reference": who}})
    if on_behalf_of:
        sig["onBehalfOf"] = {"reference": on_behalf_of}
    return sig


def signatures(
    doc: dict[str, Any], *, patient: str, representative: str | None, tz: str, terminology: Terminology
) -> list[dict[str, Any]]:
    """The form's signature (person or representative) and, when present, the minor's own signature."""
    sig = doc["signature"]
    by_rep = sig["signer"] == "representative" and representative is not None
    out = [
        signature(
            when=date.fromisoformat(sig["date"]),
            who=representative if by_rep else patient,  # type: ignore[arg-type]
            on_behalf_of=patient if by_rep else None,
            method=sig["method"],
            tz=tz,
            terminology=terminology,
        )
    ]
    minor = doc.get("minorSignature")
    if minor:
        out.append(
            signature(
                when=date.fromisoformat(minor["date"]),
                who=patient,
                on_behalf_of=None,
                method=sig["method"],
                tz=tz,
                terminology=terminology,
            )
        )
    return out


def representative_agent(
    doc: dict[str, Any], related_person: str, patient: str, terminology: Terminology
) -> dict[str, Any]:
    rep = doc["signature"]["representative"]
    codings = [c.to_json() for c in terminology.relationships[rep["relationship"]]]
    return {
        "extension": [
            {
                "url": terminology.canonical.structuredefinition("representative-authority"),
                "valueString": rep["authority"],
            }
        ],
        "type": copy.deepcopy(AGENT_ATTESTER),
        "role": [{"coding": codings, "text": rep["relationship"]}],
        "who": {"reference": related_person, "display": rep["name"]},
        "onBehalfOf": {"reference": patient},
    }


def creation(
    *,
    target: str,
    occurred: str,
    now: datetime,
    custodian: str,
    custodian_display: str,
    sigs: list[dict[str, Any]],
    extra_agents: list[dict[str, Any]],
    document: str | None,
    reason: str | None = None,
) -> dict[str, Any]:
    """Provenance of a new ASCMI Consent (form or revocation)."""
    prov: dict[str, Any] = {
        "resourceType": "Provenance",
        "target": [{"reference": target}],
        "occurredDateTime": occurred,
        "recorded": instant(now),
    }
    if reason:
        prov["reason"] = [{"text": reason}]
    prov["activity"] = copy.deepcopy(ACTIVITY_CREATE)
    prov["agent"] = [
        {
            "type": copy.deepcopy(AGENT_CUSTODIAN),
            "who": {"reference": custodian, "display": custodian_display},
        },
        *extra_agents,
    ]
    if document:
        prov["entity"] = [{"role": "source", "what": {"reference": document}}]
    prov["signature"] = sigs
    return prov


def update(
    *,
    target: str,
    occurred: str,
    now: datetime,
    reason: dict[str, Any],
    agent: str,
    agent_display: str,
    cause: str | None,
    sigs: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Provenance of a status change of an existing Consent (revocation, supersession, expiration event)."""
    prov: dict[str, Any] = {
        "resourceType": "Provenance",
        "target": [{"reference": target}],
        "occurredDateTime": occurred,
        "recorded": instant(now),
        "reason": [reason],
        "activity": copy.deepcopy(ACTIVITY_UPDATE),
        "agent": [{"type": copy.deepcopy(AGENT_CUSTODIAN), "who": _who(agent, agent_display)}],
    }
    if cause:
        prov["entity"] = [{"role": "source", "what": {"reference": cause}}]
    if sigs:
        prov["signature"] = sigs
    return prov


def _who(reference: str, display: str) -> dict[str, str]:
    """A Reference; no ``display`` when there is none (FHIR strings may not be empty)."""
    return {"reference": reference, "display": display} if display else {"reference": reference}
