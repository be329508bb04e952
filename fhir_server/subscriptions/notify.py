"""Backport IG (R4) notification shapes: the SubscriptionStatus Parameters and the notification Bundles.

Pure functions. A notification is a ``history`` Bundle whose first entry is the status Parameters (profile
``backport-subscription-status-r4``) with a ``request`` that reads like ``GET Subscription/<id>/$status``; each
event's resource follows as an entry (``full-resource``: the disclosed copy; ``id-only``: ``fullUrl`` and
``request`` only; ``empty``: nothing, and no ``focus``). Event numbers are ``valueString`` (R4 profile).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import uuid4

import orjson

from fhir_server.fhir import instant
from fhir_server.store.subscriptions import EventRow
from fhir_server.subscriptions import model

_METHOD = {"create": "POST", "update": "PUT", "delete": "DELETE"}
_STATUS = {"create": "201", "update": "200", "delete": "204"}


@dataclass(frozen=True, slots=True)
class Delivered:
    """One event as it goes out: ``body`` is the disclosed copy (None for deletes or when not sent)."""

    event: EventRow
    body: bytes | None


def status_parameters(base: str, subscription_id: str, topic: str, status: str, kind: str, since_start: int,
                      events: list[Delivered] | None = None, content: str = "empty",
                      error: str | None = None) -> dict[str, Any]:
    """The SubscriptionStatus of the R4 profile (``kind``: handshake | heartbeat | event-notification |
    query-status | query-event)."""
    params: list[dict[str, Any]] = [
        {"name": "subscription", "valueReference": {"reference": f"{base}/Subscription/{subscription_id}"}},
        {"name": "topic", "valueCanonical": topic},
        {"name": "status", "valueCode": status},
        {"name": "type", "valueCode": kind},
        {"name": "events-since-subscription-start", "valueString": str(since_start)},
    ]
    for d in events or []:
        part: list[dict[str, Any]] = [{"name": "event-number", "valueString": str(d.event.number)},
                                      {"name": "timestamp", "valueInstant": d.event.at}]
        if content != "empty":
            part.append({"name": "focus",
                         "valueReference": {"reference": f"{base}/{d.event.resource_type}/{d.event.id}"}})
        params.append({"name": "notification-event", "part": part})
    if error:
        params.append({"name": "error", "valueCodeableConcept": {
            "coding": [{"system": model.SUBSCRIPTION_ERROR, "code": "no-response"}], "text": error}})
    return {"resourceType": "Parameters", "id": str(uuid4()), "meta": {"profile": [model.PROFILE_STATUS]},
            "parameter": params}


def notification(base: str, subscription_id: str, status_params: dict[str, Any],
                 events: list[Delivered] | None = None, content: str = "empty", bundle_type: str = "history") -> bytes:
    """A notification Bundle (also the ``$events`` answer) as JSON bytes; stored bytes are embedded as they are."""
    entries: list[dict[str, Any]] = [{
        "fullUrl": f"urn:uuid:{status_params['id']}", "resource": status_params,
        "request": {"method": "GET", "url": f"{base}/Subscription/{subscription_id}/$status"},
        "response": {"status": "200"}}]
    if content != "empty":
        for d in events or []:
            e = d.event
            entry: dict[str, Any] = {"fullUrl": f"{base}/{e.resource_type}/{e.id}"}
            if content == "full-resource" and d.body is not None:
                entry["resource"] = orjson.Fragment(d.body)
            entry["request"] = {"method": _METHOD[e.interaction],
                                "url": e.resource_type if e.interaction == "create" else f"{e.resource_type}/{e.id}"}
            entry["response"] = {"status": _STATUS[e.interaction], "etag": f'W/"{e.version_id}"',
                                 "lastModified": e.at}
            entries.append(entry)
    bundle = {"resourceType": "Bundle", "id": str(uuid4()), "meta": {"profile": [model.PROFILE_NOTIFICATION]},
              "type": bundle_type, "timestamp": instant.now(), "entry": entries}
    return orjson.dumps(bundle)


def status_bundle(status_params: dict[str, Any]) -> dict[str, Any]:
    """``$status`` answers a searchset Bundle holding the status Parameters."""
    return {"resourceType": "Bundle", "id": str(uuid4()), "type": "searchset", "total": 1,
            "meta": {"lastUpdated": instant.now()},
            "entry": [{"fullUrl": f"urn:uuid:{status_params['id']}", "resource": status_params,
                       "search": {"mode": "match"}}]}
