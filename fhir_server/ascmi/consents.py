"""Reading facts off stored ASCMI Consents (which form, signed when, in force or not), shared by supersession,
revocation and rendering."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, timedelta
from typing import Any

from fhir_server.ascmi.consent import ordered_consent
from fhir_server.ascmi.terminology import Terminology


def form_type(consent: Mapping[str, Any], terminology: Terminology) -> str | None:
    """``AB133`` / ``NON-AB133`` / ``REVOCATION`` from the policyRule (or category), None if not an ASCMI
    Consent that records sharing choices (a confidential communications request is not one: ASCMI.md §6)."""
    system = terminology.canonical.codesystem("ascmi-form")
    concepts = [consent.get("policyRule") or {}, *consent.get("category", [])]
    for concept in concepts:
        for coding in concept.get("coding", []):
            if coding.get("system") == system:
                code = str(coding.get("code"))
                return None if code in terminology.non_sharing_forms else code
    return None


def signed_date(consent: Mapping[str, Any]) -> date:
    return date.fromisoformat(str(consent["dateTime"])[:10])


def period(consent: Mapping[str, Any]) -> tuple[date | None, date | None]:
    p = (consent.get("provision") or {}).get("period") or {}
    start, end = p.get("start"), p.get("end")
    return (date.fromisoformat(start[:10]) if start else None, date.fromisoformat(end[:10]) if end else None)


def can_govern(consent: Mapping[str, Any]) -> bool:
    """ASCMI.md §4 rule 2: active, or inactive with a period end; never entered-in-error or open inactive."""
    status = consent.get("status")
    return status == "active" or (status == "inactive" and period(consent)[1] is not None)


def day_before(day: date) -> date:
    return day - timedelta(days=1)


def closing_end(consent: Mapping[str, Any], day: date) -> date:
    """The period end that closes ``consent`` before ``day``: never earlier than its start, never later than
    an end it already has (an earlier expiry or revocation stays)."""
    start, end = period(consent)
    new_end = day_before(day)
    if start and new_end < start:
        new_end = start
    return min(new_end, end) if end else new_end


def closed(consent: Mapping[str, Any], end: date, *, consent_id: str) -> dict[str, Any]:
    """A new version of ``consent``: inactive, ``provision.period.end`` = ``end``; server-owned meta
    dropped."""
    out = {k: v for k, v in consent.items()}
    out["id"] = consent_id
    meta = {k: v for k, v in (consent.get("meta") or {}).items() if k not in ("versionId", "lastUpdated")}
    if meta:
        out["meta"] = meta
    else:
        out.pop("meta", None)
    out["status"] = "inactive"
    provision = dict(out.get("provision") or {})
    provision["period"] = {**(provision.get("period") or {}), "end": end.isoformat()}
    out["provision"] = provision
    return ordered_consent(out)
