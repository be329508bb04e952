"""CDS Hooks ``patient-consent-consult`` in the LEAP-CDS / ASU SHARES shape (ASCMI.md §4, §5 CDS Hooks).

Request ``context``: ``patientId`` and ``actor`` arrays of ``{system, value}``; ``purposeOfUse`` an array of
v3-ActReason codes or one string (several → each decided, the most permissive wins, as in LEAP); ``category``
and ``class`` ignored; an optional ``content`` Bundle whose resources' ``meta.security`` codes from the §2
table are the labels asked (a resource with none is general health; no content → general health).

Unlike ``$decide`` (may *all* of it go?), the consult answers *what of the content may go*: some labels
permitted and some denied → ``permit`` with one ``REDACT`` obligation listing the denied labels; all denied →
``deny``. One card; ``extension.decision`` is ``NO_CONSENT`` without a consent on file, else
``CONSENT_PERMIT`` or ``CONSENT_DENY``. The extension's ``basis`` is the overall basis for a deny, and for a
(partial) permit ``consent`` when any permitted label rests on the consent, else ``legal-floor``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from fhir_server.consent.labels import canonical_key, default_label
from fhir_server.consent.model import DEFAULT_CANONICAL_BASE, Coding, Decision, DecisionRequest, Identifier
from fhir_server.consent.parameters import versioned_url
from fhir_server.consent.tables import Tables, load_tables
from fhir_server.fhir.outcome import BadRequest

HOOK = "patient-consent-consult"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
ACT_REASON = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
REDACT = Coding(ACT_CODE, "REDACT", "redact")

_CARDS = {
    "NO_CONSENT": ("No applicable consent was found.", "warning"),
    "CONSENT_PERMIT": ("There is a patient consent permitting this action.", "info"),
    "CONSENT_DENY": ("There is a patient consent denying this action.", "critical"),
}


def discovery() -> dict[str, Any]:
    """``GET /cds-services``."""
    return {
        "services": [
            {
                "hook": HOOK,
                "id": HOOK,
                "title": "ASCMI patient consent consult",
                "description": "Decides, from the patient's ASCMI consent and California's legal floor, "
                "which of the content a Care Partner may receive for a purpose of use.",
            }
        ]
    }


@dataclass(frozen=True, slots=True)
class Consult:
    """One consult: a DecisionRequest per purpose of use, all with the same patient, actor and labels."""

    requests: tuple[DecisionRequest, ...]


def _bad(diagnostics: str, where: str) -> BadRequest:
    error: BadRequest = BadRequest(diagnostics, (where,))
    return error


def _identifiers(raw: Any, where: str) -> tuple[Identifier, ...]:
    if isinstance(raw, dict):
        raw = [raw]
    if not isinstance(raw, list) or not raw:
        raise _bad(f"{where} must be a non-empty array of {{system, value}}", where)
    out = []
    for i, item in enumerate(raw):
        if not isinstance(item, dict) or not isinstance(item.get("value"), str) or not item["value"]:
            raise _bad(f"{where}[{i}] needs a value", f"{where}[{i}]")
        system = item.get("system")
        out.append(Identifier(system if isinstance(system, str) else None, item["value"]))
    return tuple(out)


def _purposes(raw: Any, tables: Tables) -> tuple[Coding, ...]:
    where = "context.purposeOfUse"
    values = [raw] if isinstance(raw, str) else raw
    if not isinstance(values, list) or not values:
        raise _bad(f"{where} must be a code or a non-empty array of codes", where)
    out = []
    for i, v in enumerate(values):
        code = v.get("code") if isinstance(v, dict) else v
        system = v.get("system", ACT_REASON) if isinstance(v, dict) else ACT_REASON
        coding = Coding(system, code) if isinstance(code, str) else None
        if coding is None or tables.purpose_of(coding.key) is None:
            raise _bad(f"{where}[{i}]: {v!r} is not an ASCMI purpose of use", f"{where}[{i}]")
        out.append(coding)
    return tuple(dict.fromkeys(out))


def _labels(content: Any, tables: Tables) -> tuple[Coding, ...]:
    if content is None:
        return ()
    if not isinstance(content, dict) or content.get("resourceType") != "Bundle":
        raise _bad("context.content must be a Bundle", "context.content")
    found: list[Coding] = []
    for i, entry in enumerate(content.get("entry") or []):
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if not isinstance(resource, dict):
            raise _bad(f"context.content.entry[{i}] has no resource", f"context.content.entry[{i}]")
        own = []
        for sec in (resource.get("meta") or {}).get("security") or []:
            if not isinstance(sec, dict) or not isinstance(sec.get("code"), str):
                continue
            key = canonical_key(Coding(sec.get("system"), sec["code"]), tables)
            if tables.category_of_label(key) is not None or tables.is_never(key):
                own.append(Coding(key[0], key[1]))
        found += own or [default_label(tables)]
    return tuple(dict.fromkeys(found))


def parse_cds_request(body: Any, canonical_base: str = DEFAULT_CANONICAL_BASE) -> Consult:
    """A ``POST /cds-services/patient-consent-consult`` body → Consult, or BadRequest (400)."""
    if not isinstance(body, dict):
        raise _bad("the consult body must be a JSON object", "$")
    if body.get("hook", HOOK) != HOOK:
        raise _bad(f"hook must be {HOOK!r}", "hook")
    ctx = body.get("context")
    if not isinstance(ctx, dict):
        raise _bad("context is required", "context")
    tables = load_tables(canonical_base)
    patient = _identifiers(ctx.get("patientId"), "context.patientId")
    actor = _identifiers(ctx.get("actor"), "context.actor")
    labels = _labels(ctx.get("content"), tables)
    purposes = _purposes(ctx.get("purposeOfUse"), tables)
    return Consult(tuple(DecisionRequest(patient, actor, p, labels) for p in purposes))


def _rank(d: Decision) -> tuple[int, int]:
    permitted = len(d.permitted_labels)
    return (1 if permitted else 0, permitted)


def _obligation(code: Coding, codes: Sequence[Coding] = ()) -> dict[str, Any]:
    out: dict[str, Any] = {"id": {"system": code.system, "code": code.code}}
    if codes:
        out["parameters"] = {"codes": [c.to_json() for c in codes]}
    return out


def to_cds_response(
    decisions: Sequence[Decision], base_url: str, canonical_base: str = DEFAULT_CANONICAL_BASE
) -> dict[str, Any]:
    """One card from the decisions of one consult (one per purpose); the most permissive one answers."""
    if not decisions:
        raise ValueError("a consult yields at least one decision")
    d = max(decisions, key=_rank)  # max keeps the first of equals: request order breaks ties
    tables = load_tables(canonical_base)
    permitted, denied = d.permitted_labels, d.denied_labels
    outcome = "permit" if permitted else "deny"
    kind = (
        "NO_CONSENT"
        if not d.consent_on_file
        else ("CONSENT_PERMIT" if outcome == "permit" else "CONSENT_DENY")
    )
    if outcome == "deny":
        basis = d.basis
    else:
        basis = (
            "consent"
            if any(ld.basis == "consent" for ld in d.label_decisions if ld.decision == "permit")
            else "legal-floor"
        )
    obligations: list[dict[str, Any]] = []
    if outcome == "permit":
        if denied:
            obligations.append(_obligation(REDACT, denied))
        cats = [ld.category for ld in d.label_decisions if ld.decision == "permit" and ld.category]
        seen: set[tuple[str | None, str]] = set()
        for cat in dict.fromkeys(cats):
            for code in tables.obligations.get(cat, ()):
                if code.key not in seen:
                    seen.add(code.key)
                    obligations.append(_obligation(code))
    detail, indicator = _CARDS[kind]
    extension: dict[str, Any] = {
        "decision": kind,
        "outcome": outcome,
        "basis": basis,
        "obligations": obligations,
    }
    if d.consent is not None:
        extension["basedOn"] = versioned_url(base_url, d.consent.reference)
    card = {
        "summary": kind,
        "detail": detail,
        "indicator": indicator,
        "source": {"label": "ASCMI consent decision service"},
        "extension": extension,
    }
    return {"cards": [card]}
