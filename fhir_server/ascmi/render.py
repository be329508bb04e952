"""Plain-language text of an ASCMI Consent: who may see what, for what, until when.

For people, not machines: the CLI (``fhir-server ascmi render FORM``) prints it so a Care Partner can read back
what a form will record, and it can serve as the Consent's narrative. Categories are recognised by their
security labels (ConceptMap ascmi-category-to-security-label), so the text follows the data files.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime, time
from typing import Any

from fhir_server.ascmi.canonical import NETWORK_REFERENCE
from fhir_server.ascmi.consents import form_type
from fhir_server.ascmi.mapping import form_to_bundle, produced_consent_index
from fhir_server.ascmi.terminology import Terminology

_STATUS = {"active": "in force", "inactive": "no longer in force", "entered-in-error": "entered in error"}


def _category_of(provision: Mapping[str, Any], terminology: Terminology) -> str | None:
    labels = {(c.get("system"), c.get("code")) for c in provision.get("securityLabel", [])}
    for category in terminology.categories.values():
        if labels and labels == {(c.system, c.code) for c in category.labels}:
            return category.display
    return None


def _actor_names(provision: Mapping[str, Any]) -> list[str]:
    names = []
    for actor in provision.get("actor", []):
        ref = actor.get("reference", {})
        if ref.get("reference") == NETWORK_REFERENCE:
            names.append("all of the person's Care Partners")
        else:
            names.append(ref.get("display") or ref.get("reference", "?"))
    return names


def _purposes(provision: Mapping[str, Any]) -> str:
    return ", ".join(p.get("display") or p.get("code", "?") for p in provision.get("purpose", [])) or "any purpose"


def _period(consent: Mapping[str, Any], terminology: Terminology) -> str:
    provision = consent.get("provision", {})
    period = provision.get("period", {})
    events = [
        terminology.expiration_events[e["valueCode"]].display or e["valueCode"]
        for e in provision.get("extension", [])
        if e.get("valueCode") in terminology.expiration_events
    ]
    until = []
    if period.get("end"):
        until.append(f"through {period['end']}")
    if events:
        until.append(f"until {' or '.join(e.lower() for e in events)}")
    return f"from {period.get('start', '?')} " + (" or ".join(until) if until else "with no end date")


def render_consent(consent: Mapping[str, Any], *, terminology: Terminology) -> str:
    """Several lines of plain text describing ``consent``."""
    kind = form_type(consent, terminology) or "?"
    title = terminology.form_types[kind].display if kind in terminology.form_types else "Consent"
    status = _STATUS.get(str(consent.get("status")), str(consent.get("status")))
    organization = ", ".join(o.get("display") or o.get("reference", "?") for o in consent.get("organization", []))
    lines = [
        f"{title} signed {consent.get('dateTime', '?')} ({status})",
        f"On file with: {organization or 'unknown'}",
        f"Applies {_period(consent, terminology)}.",
    ]
    shared, not_shared, excluded = [], [], []
    for provision in consent.get("provision", {}).get("provision", []):
        category = _category_of(provision, terminology)
        if provision.get("type") == "permit":
            minor = " (signed for by the minor)" if provision.get("extension") else ""
            shared.append(
                f"  - {category or 'information'}{minor}: with {', '.join(_actor_names(provision))}; "
                f"for {_purposes(provision)}"
            )
        elif category:
            not_shared.append(category)
        else:
            excluded += _actor_names(provision)
    if kind == "REVOCATION":
        lines.append("The person revoked their ASCMI form: nothing is shared on the strength of it.")
    if shared:
        lines.append("May be shared:")
        lines += shared
    else:
        lines.append("Nothing may be shared on the strength of this form.")
    if not_shared:
        lines.append("Not shared: " + ", ".join(not_shared) + ".")
    if excluded:
        lines.append("Never with: " + ", ".join(excluded) + ".")
    lines.append("Psychotherapy notes are never shared under an ASCMI.")
    return "\n".join(lines)


def render_form(form: dict[str, Any], *, terminology: Terminology, today: date) -> str:
    """What a (validated) form will record, as text: maps it and renders the resulting Consent."""
    now = datetime.combine(today, time(12), UTC)
    bundle = form_to_bundle(form, now=now, terminology=terminology)
    consent = bundle["entry"][produced_consent_index(bundle)]["resource"]
    return render_consent(consent, terminology=terminology)
