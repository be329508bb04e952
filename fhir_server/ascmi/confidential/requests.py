"""Facts read off stored confidential communications Consents, shared by the intake, the lookup and the reports.

Which request is in force on a day follows ASCMI.md §4 rule 2 applied to requests: ``active``, or ``inactive``
with a ``provision.period.end`` (it governed its past days); the period contains the day; the latest received
wins, ties to the one recorded last. An ``inactive`` request without an end (withdrawn on the day it was
received) and ``entered-in-error`` never apply.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date
from typing import Any

from fhir_server.ascmi.confidential.vocab import FORM_CODE, Vocabulary
from fhir_server.ascmi.consents import period, signed_date
from fhir_server.ascmi.stored import Stored


def is_request(consent: Mapping[str, Any], vocabulary: Vocabulary) -> bool:
    """A confidential communications request (policyRule or category ``ascmi-form#CONFIDENTIAL-COMMUNICATIONS``)."""
    for concept in [consent.get("policyRule") or {}, *consent.get("category", [])]:
        for c in concept.get("coding", []):
            if c.get("system") == vocabulary.form_system and c.get("code") == FORM_CODE:
                return True
    return False


def received_date(consent: Mapping[str, Any]) -> date:
    return signed_date(consent)


def may_apply(consent: Mapping[str, Any]) -> bool:
    status = consent.get("status")
    return status == "active" or (status == "inactive" and period(consent)[1] is not None)


def applies_on(consent: Mapping[str, Any], day: date) -> bool:
    start, end = period(consent)
    return may_apply(consent) and (start is None or start <= day) and (end is None or day <= end)


def in_force(requests: Iterable[tuple[Stored, str]], day: date) -> Stored | None:
    """The request in force on ``day`` among ``(request, recorded)`` pairs (recorded: lastUpdated instant)."""
    best: tuple[tuple[date, str], Stored] | None = None
    for stored, recorded in requests:
        if not applies_on(stored.resource, day):
            continue
        key = (received_date(stored.resource), recorded)
        if best is None or key >= best[0]:
            best = (key, stored)
    return best[1] if best else None


def labels(consent: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The security labels the request covers; empty = all communications."""
    return list((consent.get("provision") or {}).get("securityLabel") or [])


def covers(consent: Mapping[str, Any], about: Iterable[Mapping[str, Any]]) -> bool:
    """Does the request cover a communication about ``about`` (labels; none = general health)?"""
    scope = labels(consent)
    if not scope:
        return True
    keys = {(c.get("system"), c.get("code")) for c in scope}
    codes = {c.get("code") for c in scope}
    return any((a.get("system"), a.get("code")) in keys if a.get("system") else a.get("code") in codes
               for a in about)


def designated_contacts(consent: Mapping[str, Any], vocabulary: Vocabulary) -> list[dict[str, Any]]:
    """The ``designated-contact`` extensions' values: ``{"valueAddress": …}`` or ``{"valueContactPoint": …}``."""
    url = vocabulary.canonical.structuredefinition("designated-contact")
    out = []
    for ext in consent.get("extension", []):
        if ext.get("url") != url:
            continue
        out += [{k: v} for k, v in ext.items() if k in ("valueAddress", "valueContactPoint")]
    return out
