"""Recording an event-based expiration (ASCMI.md §5 "Expiration events").

A form that expires on an event (``medi-cal-disenrollment`` | ``end-of-services``, the root provision's
``ascmi-expiration-event`` extension) stays open until a Care Partner records the day the event happened:
``{ formId | consent, event, date }`` → a new version of the Consent with ``provision.period.end`` = that date
(never later than an end it already has) and a Provenance saying why. Pure: the caller passes the clock and
the stored Consent.

>>> from datetime import date
>>> from fhir_server.ascmi.terminology import load_terminology
>>> [i.expression for i in event_issues({"event": "moved"}, terminology=load_terminology(),
...                                     today=date(2025, 6, 2))]
[('$',), ('$.event',), ('$.date',)]
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from fhir_server.ascmi import provenance
from fhir_server.ascmi.bundle import IdFactory, TransactionBuilder, random_ids, weak_etag
from fhir_server.ascmi.consent import ordered_consent
from fhir_server.ascmi.consents import form_type, period, signed_date
from fhir_server.ascmi.jsonpath import jsonpath
from fhir_server.ascmi.rules import as_date
from fhir_server.ascmi.stored import Stored
from fhir_server.ascmi.terminology import Terminology
from fhir_server.fhir.outcome import Conflict, FHIRError, Issue, Unprocessable

FIELDS = ("formId", "consent", "event", "date")


def _issue(code: str, message: str, *path: str) -> Issue:
    return Issue("error", code, message, (jsonpath(path),))


def event_issues(body: Any, *, terminology: Terminology, today: date) -> list[Issue]:
    """Problems of the request itself (no stored Consent needed); empty = well-formed."""
    if not isinstance(body, dict):
        return [_issue("structure", "expected an object { formId | consent, event, date }")]
    issues = [_issue("structure", f"unknown field {k!r}", k) for k in body if k not in FIELDS]
    targets = [k for k in ("formId", "consent") if k in body]
    if len(targets) != 1:
        issues.append(_issue("required", 'give exactly one of formId or consent ("Consent/<id>")'))
    for key in targets:
        value = body[key]
        if not isinstance(value, str) or not value.strip():
            issues.append(_issue("structure", "expected a non-empty string", key))
        elif key == "consent" and not (value.startswith("Consent/") and len(value) > len("Consent/")):
            issues.append(_issue("value", 'expected a reference like "Consent/<id>"', key))
    event = body.get("event")
    if "event" not in body:
        issues.append(_issue("required", "event is required", "event"))
    elif not isinstance(event, str):
        issues.append(_issue("structure", "expected a string", "event"))
    elif event not in terminology.expiration_events:
        issues.append(_issue("code-invalid", f"{event!r} is not a code of ascmi-expiration-event", "event"))
    day = as_date(body.get("date"))
    if "date" not in body:
        issues.append(_issue("required", "date is required", "date"))
    elif day is None:
        issues.append(_issue("value", f"{body['date']!r} is not a date (YYYY-MM-DD)", "date"))
    elif day > today:
        issues.append(_issue("business-rule", f"date {day.isoformat()} is in the future (today is "
                                              f"{today.isoformat()})", "date"))
    return issues


def check_event(body: Any, *, terminology: Terminology, today: date) -> None:
    """Raise a 422 carrying every issue of a malformed request."""
    issues = event_issues(body, terminology=terminology, today=today)
    if issues:
        raise FHIRError.from_issues(422, issues)


def expiration_events(consent: dict[str, Any] | Any, terminology: Terminology) -> list[str]:
    """The event codes the Consent's root provision expires on."""
    url = terminology.canonical.structuredefinition("ascmi-expiration-event")
    return [str(e.get("valueCode")) for e in (consent.get("provision") or {}).get("extension", [])
            if e.get("url") == url]


def in_force(consent: Any) -> bool:
    """Not revoked or superseded (as for revocations, ASCMI.md §5): still ``active``. An end date already
    passed does not matter: the event's date can only bring the end forward."""
    return consent.get("status") == "active"


def event_to_bundle(
    consent: Stored,
    *,
    event: str,
    day: date,
    now: datetime,
    agent: str | None = None,
    agent_display: str | None = None,
    terminology: Terminology,
    new_id: IdFactory | None = None,
) -> dict[str, Any]:
    """The transaction recording ``event`` on ``day``: the Consent's new version (entry 0) and a Provenance.

    422 when the Consent is not an ASCMI form, does not expire on ``event`` or ``day`` is before it was signed;
    409 when it is no longer in force.
    """
    resource = consent.resource
    kind = form_type(resource, terminology)
    if kind is None or kind == "REVOCATION":
        raise Unprocessable(f"{consent.reference} is not an ASCMI form", ["$"])
    if not in_force(resource):
        raise Conflict(f"{consent.reference} is no longer in force (status {resource.get('status')}, "
                       f"period end {period(resource)[1]})", ["$"])
    events = expiration_events(resource, terminology)
    if event not in events:
        expected = " or ".join(events) if events else "no event (it expires on a date only)"
        raise Unprocessable(f"{consent.reference} expires on {expected}, not on {event!r}", ["$.event"],
                            code="business-rule")
    signed = signed_date(resource)
    if day < signed:
        raise Unprocessable(f"date {day.isoformat()} is before the form's signed date {signed.isoformat()}",
                            ["$.date"], code="business-rule")
    end = min(day, period(resource)[1] or day)
    updated = {k: v for k, v in resource.items()}
    updated["id"] = consent.id
    meta = {k: v for k, v in (resource.get("meta") or {}).items() if k not in ("versionId", "lastUpdated")}
    if meta:
        updated["meta"] = meta
    else:
        updated.pop("meta", None)
    provision = dict(updated.get("provision") or {})
    provision["period"] = {**(provision.get("period") or {}), "end": end.isoformat()}
    updated["provision"] = provision
    builder = TransactionBuilder(new_id or random_ids())
    builder.put(ordered_consent(updated), if_match=weak_etag(consent.version_id))
    who, display = _agent(resource, agent, agent_display)
    coding = terminology.expiration_events[event]
    builder.post(
        provenance.update(
            target=consent.reference,
            occurred=day.isoformat(),
            now=now,
            reason={"coding": [coding.to_json()], "text": f"expired on {coding.display or event}, "
                                                          f"{day.isoformat()}"},
            agent=who,
            agent_display=display,
            cause=None,
        )
    )
    return builder.to_json()


def _agent(consent: Any, agent: str | None, display: str | None) -> tuple[str, str]:
    """Who records the change: the given Care Partner, else the Consent's organization, else its patient."""
    if agent:
        return agent, display or ""
    organizations = [o for o in consent.get("organization") or [] if o.get("reference")]
    if organizations:
        return str(organizations[0]["reference"]), str(organizations[0].get("display", ""))
    return str(consent["patient"]["reference"]), ""
