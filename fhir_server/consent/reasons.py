"""The words of a decision: each reason names its rule and what it rests on — the Consent version and nested
provision, or the legal-floor row and its authority — so a privacy officer can check it against the form.

Wording lives here only; the rules return structured results and this module phrases them.
"""

from __future__ import annotations

from datetime import date

from fhir_server.consent.compiled import CompiledConsent, CompiledProvision
from fhir_server.consent.evaluate import Evaluation
from fhir_server.consent.floor import FloorResult
from fhir_server.consent.model import Coding, Reason, RecipientFacts, Regime
from fhir_server.consent.tables import Tables

_FORM_NAMES = {
    "AB133": "ASCMI AB 133 form",
    "NON-AB133": "ASCMI Non-AB 133 form",
    "REVOCATION": "ASCMI Revocation",
}


def _what(category: str, tables: Tables) -> str:
    cat = tables.categories[category]
    return f"{cat.display} ({category})"


def _provision(c: CompiledConsent, p: CompiledProvision) -> str:
    where = f"Consent.provision.provision[{p.index}]"
    return f"{c.reference}, nested provision #{p.index + 1} ({where}: {p.describe()})"


def governing(c: CompiledConsent | None, day: date, regime: Regime) -> Reason:
    if c is None:
        return Reason(
            2,
            f"Rule 2: no ASCMI consent or revocation is in force for this patient on {day.isoformat()}"
            f" (no consent on file); the {regime} legal-floor regime applies.",
        )
    form = _FORM_NAMES.get(c.form_type or "", "ASCMI form")
    until = c.end.isoformat() if c.end else ("its expiration event" if c.expiration_event else "no end date")
    start = c.start.isoformat() if c.start else "its signed date"
    return Reason(
        2,
        f"Rule 2: on {day.isoformat()} the governing consent is {c.reference}, an {form} signed "
        f"{c.signed_text} (in force {start} to {until}, status {c.status}); the {regime} "
        f"legal-floor regime applies.",
        consent=c.reference,
    )


def never(label: Coding, why: str) -> Reason:
    return Reason(1, f"Rule 1: psychotherapy notes ({label.code}) are never shared under an ASCMI. {why}")


def floor_text(
    category: str,
    result: FloorResult,
    purpose: str,
    regime: Regime,
    recipient: RecipientFacts,
    tables: Tables,
) -> str:
    row = result.row
    if result.allowed and row is not None:
        return (
            f"the legal floor allows it without consent: row '{row.id}' ({regime}, {row.authority}) — "
            f"{row.summary}; the recipient is a known covered entity and the purpose is {purpose}"
        )
    if result.why == "not-covered-entity":
        who = "is not known to this server" if not recipient.known else "is not a covered entity"
        return f"the legal floor does not apply: the recipient {who}"
    if result.why == "purpose-never-on-floor":
        return f"the legal floor does not apply: purpose {purpose} always needs the person's consent"
    if result.why == "out-of-state" and result.exclusion is not None:
        ex = result.exclusion
        return (
            f"the legal floor does not apply: the recipient is outside California (state "
            f"{recipient.in_state}); rule '{ex.id}' ({ex.authority}) — {ex.summary}"
        )
    if row is None:
        return "the legal floor does not apply: no legal-floor row covers this category"
    if result.why == "recipient-type-excluded":
        return (
            f"the legal floor does not apply: row '{row.id}' ({regime}, {row.authority}) excludes a "
            f"{recipient.type} recipient — {row.summary}"
        )
    if not row.purposes:
        return f"the legal floor does not apply: row '{row.id}' ({row.authority}) — {row.summary}"
    allowed = ", ".join(sorted(row.purposes))
    return (
        f"the legal floor does not apply: row '{row.id}' ({regime}, {row.authority}) allows only {allowed}, "
        f"not {purpose} — {row.summary}"
    )


def floor(
    category: str,
    result: FloorResult,
    purpose: str,
    regime: Regime,
    recipient: RecipientFacts,
    tables: Tables,
) -> Reason:
    text = f"Rule 3: {_what(category, tables)}: " + floor_text(
        category, result, purpose, regime, recipient, tables
    )
    row = result.row.id if result.row else (result.exclusion.id if result.exclusion else None)
    return Reason(3, text + ".", category=category, floor_row=row)


def explicit_deny(
    category: str, c: CompiledConsent, ev: Evaluation, floor_allows: bool, honored: bool, tables: Tables
) -> Reason:
    assert ev.deny is not None
    p = ev.deny
    kind = "names this recipient as excluded" if p.has_actor and not p.label_keys else "says do not share"
    if not floor_allows:
        tail = "."
    elif honored:
        tail = " — the person's choice is honoured although the legal floor would allow sharing (rule 6)."
    else:
        tail = " — but the legal floor applies regardless (setting honor_do_not_share_on_floor is off)."
    return Reason(
        4,
        f"Rule 4: {_what(category, tables)}: the consent {kind} in {_provision(c, p)}; deny overrides{tail}",
        category=category,
        consent=c.reference,
        provision=p.index,
    )


def consent_permit(category: str, c: CompiledConsent, ev: Evaluation, tables: Tables) -> Reason:
    assert ev.permit is not None
    p = ev.permit
    signed = " The minor signed for this category (rule 5)." if p.minor_signed else ""
    return Reason(
        4,
        f"Rule 4: {_what(category, tables)}: permitted by the consent in {_provision(c, p)}.{signed}",
        category=category,
        consent=c.reference,
        provision=p.index,
    )


def consent_root(category: str, c: CompiledConsent, ev: Evaluation, tables: Tables) -> Reason:
    return Reason(
        4,
        f"Rule 4: {_what(category, tables)}: no nested provision of {c.reference} permits it for this "
        f"recipient and purpose, so the consent's base rule ({ev.decision}) applies.",
        category=category,
        consent=c.reference,
    )


def minor_unsigned(category: str, c: CompiledConsent, ev: Evaluation, day: date, tables: Tables) -> Reason:
    assert ev.unsigned_permit is not None
    p = ev.unsigned_permit
    return Reason(
        5,
        f"Rule 5: {_what(category, tables)}: the patient is under 18 on {day.isoformat()} and this is "
        f"information a minor may consent to alone; {_provision(c, p)} permits it but the minor did "
        f"not sign for it, so a parent's or representative's signature does not cover it.",
        category=category,
        consent=c.reference,
        provision=p.index,
    )


def no_consent(category: str, tables: Tables) -> Reason:
    return Reason(
        6,
        f"Rule 6: {_what(category, tables)}: no consent is on file and the legal floor does not allow "
        f"it, so it is denied.",
        category=category,
    )


def obligation(code: Coding, categories: list[str]) -> Reason:
    return Reason(
        7, f"Rule 7: the permit of {', '.join(categories)} carries obligation {code.code} ({code.display})."
    )
