"""The vocabulary of Subscriptions: Backport IG URLs, the two topics, and :class:`Spec` (a parsed Subscription).

A :class:`Spec` is what the server needs from a Subscription resource to match writes and deliver
notifications; it is stored as JSON beside the resource (``store.subscriptions``) so matching never re-parses
the resource.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

BACKPORT = "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/"
EXT_FILTER = BACKPORT + "backport-filter-criteria"
EXT_PAYLOAD_CONTENT = BACKPORT + "backport-payload-content"
EXT_HEARTBEAT = BACKPORT + "backport-heartbeat-period"
EXT_TIMEOUT = BACKPORT + "backport-timeout"
EXT_MAX_COUNT = BACKPORT + "backport-max-count"
EXT_TOPIC_CANONICAL = BACKPORT + "capabilitystatement-subscriptiontopic-canonical"
PROFILE_SUBSCRIPTION = BACKPORT + "backport-subscription"
PROFILE_STATUS = BACKPORT + "backport-subscription-status-r4"
PROFILE_NOTIFICATION = BACKPORT + "backport-subscription-notification-r4"
EXT_WEBSOCKET = "http://hl7.org/fhir/StructureDefinition/capabilitystatement-websocket"
SUBSCRIPTION_ERROR = "http://terminology.hl7.org/CodeSystem/subscription-error"

CONSENT_CHANGE = "consent-change"
PATIENT_DATA_CHANGE = "patient-data-change"
TOPICS = (CONSENT_CHANGE, PATIENT_DATA_CHANGE)
CONTENTS = ("empty", "id-only", "full-resource")
CHANNELS = ("rest-hook", "websocket")


def topic_url(canonical_base: str, name: str) -> str:
    """``topic_url("https://ascmi.example.org/fhir", "consent-change")`` →
    ``https://ascmi.example.org/fhir/SubscriptionTopic/consent-change``"""
    return f"{canonical_base}/SubscriptionTopic/{name}"


@dataclass(frozen=True, slots=True)
class Filter:
    """One ANDed group of criteria on one type: ``Consent?patient=Patient/1&status=active``."""

    resource_type: str
    query: str  # the query string after "?"


@dataclass(frozen=True)
class Spec:
    """A parsed Subscription. ``filters`` are ORed (for classic: exactly one, the criteria)."""

    kind: str  # classic | topic
    criteria: str  # classic search, or topic canonical
    topic: str | None  # consent-change | patient-data-change (topic-based only)
    filters: tuple[Filter, ...]
    channel: str  # rest-hook | websocket
    endpoint: str | None
    headers: tuple[str, ...] = ()
    payload: str | None = None  # MIME type, e.g. application/fhir+json (None: classic ping without body)
    content: str = "empty"  # empty | id-only | full-resource (topic-based)
    heartbeat: int = 0  # seconds; 0: none
    timeout: int = 10
    max_count: int = 1
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Spec:
        values = dict(data)
        values["filters"] = tuple(Filter(**f) for f in values.get("filters", ()))
        values["headers"] = tuple(values.get("headers", ()))
        return cls(**values)
