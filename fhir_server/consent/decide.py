"""The entry point: may recipient R receive information labelled L for purpose P at time T about patient X?

``decide`` applies ASCMI.md §4 rules 1–7 in order to facts the caller gathered; it does no I/O. The caller
(HTTP layer) resolves the patient and recipient from the store, passes the patient's Consents (current version
of each) and stores the audit event built by :mod:`fhir_server.consent.audit`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime

from fhir_server.consent import reasons
from fhir_server.consent.clock import local_date, now_date, to_local_date
from fhir_server.consent.combine import Context, combine, overall
from fhir_server.consent.compiled import compiled
from fhir_server.consent.evaluate import Party, evaluate
from fhir_server.consent.floor import floor
from fhir_server.consent.governing import governing
from fhir_server.consent.labels import group_labels
from fhir_server.consent.minors import needs_minor_signature
from fhir_server.consent.model import (
    CategoryDecision,
    Coding,
    ConsentVersion,
    Decision,
    DecisionRequest,
    DecisionSettings,
    LabelDecision,
    Reason,
    RecipientFacts,
    Regime,
)
from fhir_server.consent.obligations import obligations_for
from fhir_server.consent.tables import Tables, load_tables
from fhir_server.fhir.outcome import BadRequest

DEFAULT_SETTINGS = DecisionSettings()


def business_date(time: date | datetime | None, tz: str, now: datetime | None = None) -> date:
    """T's calendar date in the server's zone (§5 Calendar); None means today."""
    if time is None:
        return to_local_date(now, tz) if now is not None else now_date(tz)
    return to_local_date(time, tz)


def purpose_code(purpose: Coding, tables: Tables) -> str:
    code = tables.purpose_of(purpose.key)
    if code is None:
        raise BadRequest(
            f"purpose {purpose.system or ''}#{purpose.code} is not an ASCMI purpose of use",
            ("purpose",),
            code="code-invalid",
        )
    return code


def decide(
    request: DecisionRequest,
    consents: Sequence[ConsentVersion],
    recipient: RecipientFacts,
    patient_birth_date: date | str | None,
    settings: DecisionSettings = DEFAULT_SETTINGS,
    *,
    now: datetime | None = None,
) -> Decision:
    """Decide one request. ``consents`` are the patient's Consents (any status; non-ASCMI ones are ignored).

    Raises :class:`BadRequest` for a purpose or label outside the tables (``parse_parameters`` catches these
    first for HTTP input).
    """
    tables = load_tables(settings.canonical_base)
    tz = settings.timezone
    day = business_date(request.time, tz, now)
    purpose = purpose_code(request.purpose, tables)
    groups = group_labels(request.labels, tables)
    birth = local_date(patient_birth_date, tz) if isinstance(patient_birth_date, str) else patient_birth_date

    gov = governing((compiled(c, tables, tz) for c in consents), day)
    regime: Regime = "AB133" if gov is not None and gov.form_type == "AB133" else "NON-AB133"
    ctx = Context(tables, purpose, regime, recipient, day, settings.honor_do_not_share_on_floor)
    party = Party.of(recipient, day)

    why: list[Reason] = [reasons.governing(gov, day, regime)]
    why += [reasons.never(lab, tables.never_why) for lab in groups.never]
    by_category: dict[str, CategoryDecision] = {}
    for cat in groups.categories:
        ev = None
        if gov is not None:
            ev = evaluate(gov, cat, purpose, party, needs_minor_signature(cat, birth, day, tables))
        decision = combine(cat, gov, ev, floor(cat, purpose, regime, recipient, tables), ctx)
        by_category[cat] = decision
        why += decision.reasons

    label_decisions = tuple(
        LabelDecision(lab, None, "deny", "never")
        if cat is None
        else LabelDecision(lab, cat, by_category[cat].decision, by_category[cat].basis)
        for lab, cat in zip(groups.labels, groups.label_categories, strict=True)
    )
    verdict, basis = overall(label_decisions, bool(groups.never))
    obligations: tuple[Coding, ...] = ()
    if verdict == "permit":
        permitted = [c for c in groups.categories if by_category[c].decision == "permit"]
        found = obligations_for(permitted, tables)
        obligations = tuple(code for code, _ in found)
        why += [reasons.obligation(code, cats) for code, cats in found]
    return Decision(
        decision=verdict,
        basis=basis,
        consent_on_file=gov is not None,
        consent=gov.version if gov is not None else None,
        date=day,
        regime=regime,
        label_decisions=label_decisions,
        categories=tuple(by_category.values()),
        reasons=tuple(why),
        obligations=obligations,
    )
