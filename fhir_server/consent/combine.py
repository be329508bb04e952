"""Rule 6: combine the consent (rules 4–5) with the legal floor (rule 3) per category; overall basis (§5).

Per category: an explicit nested ``deny`` wins even over the floor (the person's "do not share" and named
exclusions are honoured; setting ``honor_do_not_share_on_floor``, default on); else the floor allows → permit,
basis ``legal-floor``; else the consent decides, basis ``consent``; with no consent on file → deny,
``no-consent``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from fhir_server.consent import reasons
from fhir_server.consent.compiled import CompiledConsent
from fhir_server.consent.evaluate import Evaluation
from fhir_server.consent.floor import FloorResult
from fhir_server.consent.model import Basis, CategoryDecision, LabelDecision, RecipientFacts, Regime, Verdict
from fhir_server.consent.tables import Tables


@dataclass(frozen=True, slots=True)
class Context:
    tables: Tables
    purpose: str
    regime: Regime
    recipient: RecipientFacts
    day: date
    honor_do_not_share_on_floor: bool


def combine(
    category: str, consent: CompiledConsent | None, ev: Evaluation | None, fl: FloorResult, ctx: Context
) -> CategoryDecision:
    t = ctx.tables
    floor_reason = reasons.floor(category, fl, ctx.purpose, ctx.regime, ctx.recipient, t)
    if consent is not None and ev is not None and ev.explicit_deny:
        deny_reason = reasons.explicit_deny(
            category, consent, ev, fl.allowed, ctx.honor_do_not_share_on_floor, t
        )
        if ctx.honor_do_not_share_on_floor or not fl.allowed:
            return CategoryDecision(category, "deny", "consent", True, (deny_reason,))
        return CategoryDecision(category, "permit", "legal-floor", True, (deny_reason, floor_reason))
    if fl.allowed:
        return CategoryDecision(category, "permit", "legal-floor", False, (floor_reason,))
    if consent is None or ev is None:
        return CategoryDecision(
            category, "deny", "no-consent", False, (floor_reason, reasons.no_consent(category, t))
        )
    if ev.decision == "permit":
        return CategoryDecision(
            category, "permit", "consent", False, (reasons.consent_permit(category, consent, ev, t),)
        )
    why = [floor_reason]
    if ev.unsigned_permit is not None:
        why.append(reasons.minor_unsigned(category, consent, ev, ctx.day, t))
    why.append(reasons.consent_root(category, consent, ev, t))
    return CategoryDecision(category, "deny", "consent", False, tuple(why))


def overall(label_decisions: Sequence[LabelDecision], never_requested: bool) -> tuple[Verdict, Basis]:
    """§5 Overall basis: ``never`` first; else the first denied label's basis; else consent, else floor."""
    if never_requested:
        return "deny", "never"
    for ld in label_decisions:
        if ld.decision == "deny":
            return "deny", ld.basis
    if any(ld.basis == "consent" for ld in label_decisions):
        return "permit", "consent"
    return "permit", "legal-floor"
