"""``_summary`` and ``_elements``: the subsets of a resource a client may ask for (search.html#summary).

Subsetting applies to top-level elements; a subsetted resource is marked with the ``SUBSETTED`` tag.
"""

from __future__ import annotations

from typing import Any

from fhir_server.fhir import registry
from fhir_server.fhir.outcome import BadRequest

SUMMARY_MODES = ("true", "text", "data", "count", "false")
_SUBSETTED = {"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue", "code": "SUBSETTED",
              "display": "subsetted"}
_ALWAYS = ("resourceType", "id", "meta")
# The type suffixes a choice element ``value[x]`` takes in JSON (``valueString``), so ``_elements=value`` works.
_CHOICE_TYPES = frozenset(
    "Base64Binary Boolean Canonical Code Date DateTime Decimal Id Instant Integer Markdown Oid PositiveInt String "
    "Time UnsignedInt Uri Url Uuid Address Age Annotation Attachment CodeableConcept Coding ContactPoint Count "
    "Distance Duration HumanName Identifier Money Period Quantity Range Ratio Reference SampledData Signature "
    "Timing ContactDetail Contributor DataRequirement Expression ParameterDefinition RelatedArtifact "
    "TriggerDefinition UsageContext Dosage Meta".split())


def _matches(key: str, elements: list[str]) -> bool:
    for name in elements:
        if name.endswith("[x]"):
            stem = name[:-3]
            if key.startswith(stem) and key[len(stem) :] in _CHOICE_TYPES:
                return True
        elif key == name:
            return True
    return False


def _mark(resource: dict[str, Any]) -> dict[str, Any]:
    meta = dict(resource.get("meta") or {})
    meta["tag"] = [*(meta.get("tag") or []), _SUBSETTED]
    resource["meta"] = meta
    return resource


def check_summary(value: str) -> str:
    if value not in SUMMARY_MODES:
        raise BadRequest(f"_summary must be one of {', '.join(SUMMARY_MODES)}, not {value!r}", ["_summary"])
    return value


def _choice_names(elements: list[str]) -> list[str]:
    """Client names as element definitions spell them: ``value`` also means ``value[x]``."""
    return [*elements, *(f"{name}[x]" for name in elements if not name.endswith("[x]"))]


def subset(resource: dict[str, Any], summary: str | None, elements: list[str] | None) -> dict[str, Any]:
    """Apply ``_summary`` (true/text/data/false) or ``_elements`` to one resource.

    >>> subset({"resourceType": "Patient", "id": "1", "gender": "male", "photo": []}, None, ["gender"])["gender"]
    'male'
    """
    rtype = resource.get("resourceType", "")
    if summary in (None, "false") and not elements:
        return resource
    if summary == "data":
        return _mark({k: v for k, v in resource.items() if k != "text"})
    if summary == "text":
        keep = ["text", *registry.required_elements(rtype)]
    elif summary == "true":
        keep = registry.summary_elements(rtype)
    else:
        keep = [*_choice_names(elements or []), *registry.required_elements(rtype)]
    return _mark({k: v for k, v in resource.items() if k in _ALWAYS or _matches(k, keep)})
