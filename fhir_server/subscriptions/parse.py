"""A Subscription resource → :class:`~.model.Spec`, refusing what the server cannot honour (ACCESS.md §E).

Pure: no I/O. Every refusal is a 422 OperationOutcome (``not-supported``, ``invalid`` or ``business-rule``)
raised before anything is stored. Criteria are parsed with the server's own search parser (strict), so a
classic subscription accepts exactly the searches ``GET [type]?…`` accepts.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any
from urllib.parse import parse_qsl

from fhir_server.fhir import registry
from fhir_server.fhir.outcome import FHIRError, Unprocessable
from fhir_server.fhir.search import api as search_api
from fhir_server.fhir.search import definitions
from fhir_server.fhir.search.ast import SearchQuery
from fhir_server.subscriptions import model
from fhir_server.subscriptions.model import Filter, Spec

_TOPIC_PARAMS = {model.CONSENT_CHANGE: {"patient", "status"}, model.PATIENT_DATA_CHANGE: {"patient"}}


def _ext(element: Any, url: str) -> list[dict[str, Any]]:
    if not isinstance(element, dict):
        return []
    return [e for e in element.get("extension") or [] if isinstance(e, dict) and e.get("url") == url]


def _ext_value(element: Any, url: str, key: str) -> Any:
    found = _ext(element, url)
    return found[0].get(key) if found else None


@lru_cache(maxsize=4096)
def criteria_query(criteria: str) -> SearchQuery:
    """``Consent?patient=Patient/1`` → its parsed search (strict), for matching.

    Raises 422 ``invalid`` for anything a search of this server would refuse, and for result parameters
    (``_sort``, ``_include``…), which select nothing.
    """
    rtype, _, query = criteria.partition("?")
    if not registry.is_resource_type(rtype):
        raise Unprocessable(f"criteria {criteria!r} must start with a FHIR resource type followed by '?'",
                            ["Subscription.criteria"], code="invalid")
    pairs = parse_qsl(query, keep_blank_values=True)
    for name, _value in pairs:
        if name.startswith("_") and name.split(":")[0] not in search_api.FILTER_PARAMS:
            raise Unprocessable(f"criteria {criteria!r}: {name} selects no resources and is not allowed here",
                                ["Subscription.criteria"], code="invalid")
    try:
        return search_api.parse_conditional(rtype, pairs, 1)
    except FHIRError as exc:
        raise Unprocessable(f"criteria {criteria!r} is not a search this server supports: {exc.diagnostics}",
                            ["Subscription.criteria"], code="invalid") from None


def _topic_filters(topic: str, resource: dict[str, Any]) -> tuple[Filter, ...]:
    raw = [e.get("valueString") for e in _ext(resource.get("_criteria"), model.EXT_FILTER)]
    grouped: dict[str, list[str]] = {}
    for text in raw:
        if not isinstance(text, str) or "?" not in text:
            raise Unprocessable(f"filter criteria {text!r} must look like Type?param=value",
                                ["Subscription.criteria"], code="invalid")
        rtype, _, query = text.partition("?")
        pairs = parse_qsl(query, keep_blank_values=True)
        allowed = _TOPIC_PARAMS[topic]
        if topic == model.CONSENT_CHANGE and rtype != "Consent":
            raise Unprocessable(f"topic {topic} filters Consent only, not {rtype}", ["Subscription.criteria"],
                                code="not-supported")
        if topic == model.PATIENT_DATA_CHANGE and (
                not registry.is_resource_type(rtype) or definitions.param(rtype, "patient") is None):
            raise Unprocessable(f"topic {topic} filters types with a patient search parameter; {rtype!r} has "
                                "none", ["Subscription.criteria"], code="not-supported")
        for name, _value in pairs:
            if name.split(":")[0] not in allowed:
                raise Unprocessable(f"topic {topic} defines no filter {name!r} (it has: {', '.join(sorted(allowed))})",
                                    ["Subscription.criteria"], code="not-supported")
        if not pairs:
            raise Unprocessable(f"filter criteria {text!r} has no parameter", ["Subscription.criteria"],
                                code="invalid")
        grouped.setdefault(rtype, []).append(query)
    filters = tuple(Filter(rtype, "&".join(parts)) for rtype, parts in grouped.items())
    for f in filters:
        criteria_query(f"{f.resource_type}?{f.query}")  # values must parse
    if topic == model.CONSENT_CHANGE and not filters:
        return (Filter("Consent", ""),)  # every Consent change
    if topic == model.PATIENT_DATA_CHANGE and not filters:
        raise Unprocessable("a patient-data-change subscription needs at least one <Type>?patient= filter "
                            f"({model.EXT_FILTER})", ["Subscription.criteria"], code="business-rule")
    return filters


def _whole(value: Any, what: str, minimum: int) -> int | None:
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise Unprocessable(f"{what} must be a whole number ≥ {minimum}", ["Subscription.channel"], code="invalid")
    return value


def spec_from_resource(resource: dict[str, Any], canonical_base: str) -> Spec:
    """Parse ``resource`` (a Subscription that passed structural validation) or raise 422."""
    criteria = resource.get("criteria")
    if not isinstance(criteria, str) or not criteria.strip():
        raise Unprocessable("Subscription.criteria is required", ["Subscription.criteria"], code="required")
    channel = resource.get("channel") if isinstance(resource.get("channel"), dict) else {}
    assert isinstance(channel, dict)
    ctype = channel.get("type")
    if ctype not in model.CHANNELS:
        raise Unprocessable(f"channel type {ctype!r} is not supported (supported: {', '.join(model.CHANNELS)})",
                            ["Subscription.channel.type"], code="not-supported")
    endpoint = channel.get("endpoint")
    if ctype == "rest-hook" and not isinstance(endpoint, str):
        raise Unprocessable("a rest-hook channel needs channel.endpoint", ["Subscription.channel.endpoint"],
                            code="required")
    headers = tuple(h for h in channel.get("header") or [] if isinstance(h, str))
    for h in headers:
        name, sep, _ = h.partition(":")
        if not sep or not name.strip() or any(c in h for c in "\r\n"):
            raise Unprocessable(f"channel header {h!r} must look like 'Name: value'",
                                ["Subscription.channel.header"], code="invalid")
    payload = channel.get("payload") if isinstance(channel.get("payload"), str) else None
    content = _ext_value(channel.get("_payload"), model.EXT_PAYLOAD_CONTENT, "valueCode")
    heartbeat = _whole(_ext_value(channel, model.EXT_HEARTBEAT, "valueUnsignedInt"), "heartbeat period", 1)
    timeout = _whole(_ext_value(channel, model.EXT_TIMEOUT, "valueUnsignedInt"), "timeout", 1)
    max_count = _whole(_ext_value(channel, model.EXT_MAX_COUNT, "valuePositiveInt"), "max count", 1)
    common: dict[str, Any] = {"channel": ctype, "endpoint": endpoint if ctype == "rest-hook" else None,
                              "headers": headers, "timeout": min(timeout or 10, 120)}
    if "://" not in criteria:
        criteria_query(criteria)
        rtype, _, query = criteria.partition("?")
        return Spec("classic", criteria, None, (Filter(rtype, query),), payload=payload, **common)
    topic = next((t for t in model.TOPICS if criteria == model.topic_url(canonical_base, t)), None)
    if topic is None:
        known = ", ".join(model.topic_url(canonical_base, t) for t in model.TOPICS)
        raise Unprocessable(f"unknown topic {criteria!r}; this server offers {known}", ["Subscription.criteria"],
                            code="not-supported")
    if content not in model.CONTENTS:
        raise Unprocessable(f"a topic-based subscription needs {model.EXT_PAYLOAD_CONTENT} on channel.payload, "
                            f"one of {', '.join(model.CONTENTS)} (found {content!r})",
                            ["Subscription.channel.payload"], code="required" if content is None else "invalid")
    return Spec("topic", criteria, topic, _topic_filters(topic, resource), payload=payload or "application/fhir+json",
                content=content, heartbeat=heartbeat or 0, max_count=min(max_count or 1, 100), **common)


def read_types(spec: Spec) -> set[str]:
    """Resource types a subscription's owner must be allowed to read."""
    if spec.topic == model.CONSENT_CHANGE:
        return {"Consent"}
    return {f.resource_type for f in spec.filters}
