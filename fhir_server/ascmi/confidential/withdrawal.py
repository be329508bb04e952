"""Withdrawal of a confidential communications request (ASCMI.md §6) → a transaction Bundle. Pure.

The request's Consent gets a new version, ``inactive`` with ``provision.period.end`` = the day before the
withdrawal was received (never deleted; ``If-Match`` its version), a Provenance says why, and its open Tasks are
cancelled. A request withdrawn on the very day it was received never applied: it is stored ``inactive``
without a period end, which (as in ASCMI.md §4 rule 2) means it never governs.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from fhir_server.ascmi import provenance
from fhir_server.ascmi.bundle import TransactionBuilder, random_ids, weak_etag
from fhir_server.ascmi.confidential import requests
from fhir_server.ascmi.confidential.mapping import close_tasks
from fhir_server.ascmi.confidential.vocab import Vocabulary
from fhir_server.ascmi.consents import closed, closing_end, day_before, period
from fhir_server.ascmi.stored import Stored
from fhir_server.fhir.outcome import Conflict, Unprocessable


def check_withdrawable(consent: Stored, received: date, *, vocabulary: Vocabulary, expression: str) -> None:
    if not requests.is_request(consent.resource, vocabulary):
        raise Unprocessable(f"{consent.reference} is not a confidential communications request", [expression])
    status = consent.resource.get("status")
    if status != "active":
        raise Conflict(f"{consent.reference} is no longer in force (status {status}); it was withdrawn or replaced "
                       "by a newer request", [expression])
    start = requests.received_date(consent.resource)
    if received < start:
        raise Unprocessable(f"the withdrawal was received {received.isoformat()}, before the request itself "
                            f"({start.isoformat()})", ["$.receivedDate"])


def withdrawn(consent: Stored, received: date) -> dict[str, Any]:
    """The request's new version: ends the day before ``received`` (or never applied, if withdrawn that day)."""
    start, _ = period(consent.resource)
    if start is not None and day_before(received) < start:
        out = closed(dict(consent.resource), start, consent_id=consent.id)
        del out["provision"]["period"]["end"]
        return out
    return closed(dict(consent.resource), closing_end(consent.resource, received), consent_id=consent.id)


def withdrawal_to_bundle(consent: Stored, *, received: date, agent: str, agent_display: str,
                         tasks: Sequence[Stored], now: datetime, vocabulary: Vocabulary,
                         expression: str) -> dict[str, Any]:
    check_withdrawable(consent, received, vocabulary=vocabulary, expression=expression)
    builder = TransactionBuilder(random_ids())
    builder.put(withdrawn(consent, received), if_match=weak_etag(consent.version_id))
    why = f"withdrawn by the member, received {received.isoformat()}"
    builder.post(provenance.update(
        target=consent.reference, occurred=received.isoformat(), now=now,
        reason={"coding": [vocabulary.form_coding()], "text": why},
        agent=agent, agent_display=agent_display, cause=None))
    close_tasks(builder, tasks, why)
    return builder.to_json()
