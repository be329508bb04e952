"""A confidential communications request → one FHIR transaction Bundle (ASCMI.md §6). Pure: the caller passes
the clock, the time zone, the id factory and what it found in the store.

Entries, in order: the Patient (conditional create, matched as for forms), the receiving Care Partner's
Organization (and network membership, as for a revocation's ``receivedBy``), the Consent (profile
ASCMIConfidentialCommunication), its Provenance, one ``fulfill`` Task per Care Partner that must act, then the
replacement of older requests: each one still in force closes (``inactive``, ``period.end`` the day before the
newer ``receivedDate``, ``If-Match`` its version) with a Provenance, and its open Tasks are cancelled.

A request received before one already on file is stored ``inactive`` with ``period.end`` the day before the
newer one's (it governed its own past days) and gets no Tasks: nobody has to act on a request already replaced.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from urllib.parse import quote

from fhir_server.ascmi import patient as patients
from fhir_server.ascmi import provenance
from fhir_server.ascmi.bundle import IdFactory, TransactionBuilder, random_ids, weak_etag
from fhir_server.ascmi.confidential import requests
from fhir_server.ascmi.confidential.calendar import due_date
from fhir_server.ascmi.confidential.vocab import CLOSED_TASK_STATUSES, FULFILL, PATIENT_CONSENT, Vocabulary
from fhir_server.ascmi.consent import ordered_consent
from fhir_server.ascmi.consents import closed, closing_end
from fhir_server.ascmi.partners import PartnerRef, add_partners, partner_key
from fhir_server.ascmi.stored import KnownPartner, Stored
from fhir_server.ascmi.vocab import PATIENT_PRIVACY

SCOPE_TEXT = {
    "sensitive-services": "communications about sensitive services",
    "all-communications": "all communications",
}


@dataclass(frozen=True, slots=True)
class Obliged:
    """A Care Partner that must act on the request (gets a Task): an Organization on file."""

    reference: str
    display: str


def request_system(received_by: dict[str, Any], vocabulary: Vocabulary) -> str:
    """The identifier system of requestIds assigned by one Care Partner."""
    key = quote(partner_key(received_by), safe="")
    return str(vocabulary.canonical.sid(f"ascmi-confidential-communication-id/{key}"))


def designated_extensions(designated: Mapping[str, Any], vocabulary: Vocabulary) -> list[dict[str, Any]]:
    url = vocabulary.canonical.structuredefinition("designated-contact")
    out = []
    if designated.get("address"):
        address = {"use": "home", "type": "postal", **designated["address"], "country": "US"}
        out.append({"url": url, "valueAddress": address})
    if designated.get("email"):
        out.append({"url": url, "valueContactPoint": {"system": "email", "value": designated["email"]}})
    if designated.get("phone"):
        out.append({"url": url, "valueContactPoint": {"system": "phone", "value": designated["phone"]}})
    return out


def request_consent(request: Mapping[str, Any], *, patient: str, received_by: PartnerRef,
                    vocabulary: Vocabulary) -> dict[str, Any]:
    """The Consent of a validated request (status active; replacement may change that)."""
    scope = request.get("scope", "sensitive-services")
    provision: dict[str, Any] = {"type": "deny", "period": {"start": request["receivedDate"]}}
    if request.get("ends"):
        provision["period"]["end"] = request["ends"]
    if scope == "sensitive-services":
        provision["securityLabel"] = [c.to_json() for c in vocabulary.sensitive_labels]
    return ordered_consent({
        "resourceType": "Consent",
        "meta": {"profile": [vocabulary.canonical.structuredefinition("ASCMIConfidentialCommunication")]},
        "extension": designated_extensions(request["designated"], vocabulary),
        "identifier": [{
            "use": "official",
            "system": request_system(request["receivedBy"], vocabulary),
            "value": request["requestId"],
            "assigner": {"reference": received_by.reference, "display": received_by.display},
        }],
        "status": "active",
        "scope": copy.deepcopy(PATIENT_PRIVACY),
        "category": [{"coding": [dict(PATIENT_CONSENT)]}, {"coding": [vocabulary.form_coding()]}],
        "patient": {"reference": patient},
        "dateTime": request["receivedDate"],
        "performer": [{"reference": patient}],
        "organization": [{"reference": received_by.reference, "display": received_by.display}],
        "policyRule": {"coding": [vocabulary.form_coding()]},
        "provision": provision,
    })


def fulfil_task(*, consent: str, patient: str, owner: Obliged, requester: PartnerRef, received: date, via: str,
                scope: str, now: datetime) -> dict[str, Any]:
    due = due_date(received, via)
    return {
        "resourceType": "Task",
        "status": "requested",
        "intent": "order",
        "code": {"coding": [dict(FULFILL)]},
        "description": (f"Send {SCOPE_TEXT[scope]} about this member only to the contact they designated, never to "
                        f"the subscriber or other enrollees (California Civil Code 56.107); requested by "
                        f"{via} on {received.isoformat()}, due {due.isoformat()}."),
        "focus": {"reference": consent},
        "for": {"reference": patient},
        "authoredOn": provenance.instant(now),
        "requester": {"reference": requester.reference, "display": requester.display},
        "owner": {"reference": owner.reference, "display": owner.display} if owner.display
        else {"reference": owner.reference},
        "restriction": {"period": {"start": received.isoformat(), "end": due.isoformat()}},
        "input": [{"type": {"text": "receivedVia"}, "valueCode": via}],
    }


def cancelled(task: Stored, reason: str) -> dict[str, Any]:
    """A new version of an open Task: cancelled, with why (server-owned meta dropped)."""
    out = {k: v for k, v in task.resource.items() if k != "meta"}
    meta = {k: v for k, v in (task.resource.get("meta") or {}).items() if k not in ("versionId", "lastUpdated")}
    if meta:
        out["meta"] = meta
    out["id"] = task.id
    out["status"] = "cancelled"
    out["statusReason"] = {"text": reason}
    return out


def close_tasks(builder: TransactionBuilder, tasks: Sequence[Stored], reason: str) -> None:
    for task in tasks:
        if task.resource.get("status") not in CLOSED_TASK_STATUSES:
            builder.put(cancelled(task, reason), if_match=weak_etag(task.version_id))


def request_to_bundle(
    request: dict[str, Any],
    *,
    vocabulary: Vocabulary,
    now: datetime,
    tz: str,
    obliged: Sequence[Obliged] = (),
    known_partners: Sequence[KnownPartner] = (),
    existing: Sequence[tuple[Stored, str]] = (),
    open_tasks: Mapping[str, Sequence[Stored]] | None = None,
    new_id: IdFactory | None = None,
) -> tuple[dict[str, Any], int]:
    """The transaction Bundle of a *validated* request and the index of its Consent entry.

    ``obliged``: the health-plan network members the person's ASCMI forms name (besides the receiver);
    ``existing``: the person's confidential communications Consents on file with their lastUpdated;
    ``open_tasks``: Tasks on file by the ``Consent/<id>`` they focus on.
    """
    t = vocabulary.terminology
    builder = TransactionBuilder(new_id or random_ids())
    received = date.fromisoformat(request["receivedDate"])
    person = builder.post(
        patients.patient(request["individual"], request["receivedBy"], t),
        if_none_exist=patients.match_query(request["individual"], request["receivedBy"], t),
    )
    (received_by,) = add_partners(builder, [request["receivedBy"]], signed=received, terminology=t,
                                  known=known_partners)
    consent = request_consent(request, patient=person, received_by=received_by, vocabulary=vocabulary)
    candidates = [(s, r) for s, r in existing if requests.may_apply(s.resource)]
    older = [s for s, _ in candidates
             if s.resource.get("status") == "active" and requests.received_date(s.resource) <= received]
    newer = sorted((s for s, _ in candidates if requests.received_date(s.resource) > received),
                   key=lambda s: requests.received_date(s.resource))
    if newer:
        consent["status"] = "inactive"
        end = closing_end(consent, requests.received_date(newer[0].resource))
        consent["provision"]["period"]["end"] = end.isoformat()
    index = len(builder.entries)
    consent_url = builder.post(consent)
    reason = None
    if newer:
        reason = (f"received before the confidential communications request on file received "
                  f"{newer[0].resource['dateTime']} ({newer[0].reference}); stored inactive")
    created = provenance.creation(
        target=consent_url, occurred=request["receivedDate"], now=now, custodian=received_by.reference,
        custodian_display=received_by.display, sigs=[], extra_agents=[], document=None, reason=reason)
    del created["signature"]  # a request is not signed (it may come by phone)
    builder.post(created)
    if not newer:
        owners = [Obliged(received_by.reference, received_by.display)]
        owners += [o for o in obliged if o.reference not in {x.reference for x in owners}]
        for owner in owners:
            builder.post(fulfil_task(consent=consent_url, patient=person, owner=owner, requester=received_by,
                                     received=received, via=request["receivedVia"],
                                     scope=request.get("scope", "sensitive-services"), now=now))
    why = f"replaced by the confidential communications request received {received.isoformat()}"
    for stored in older:
        end = closing_end(stored.resource, received)
        builder.put(closed(dict(stored.resource), end, consent_id=stored.id), if_match=weak_etag(stored.version_id))
        builder.post(provenance.update(
            target=stored.reference, occurred=received.isoformat(), now=now,
            reason={"coding": [vocabulary.form_coding()], "text": why},
            agent=received_by.reference, agent_display=received_by.display, cause=consent_url))
        close_tasks(builder, (open_tasks or {}).get(stored.reference, ()), why)
    return builder.to_json(), index

