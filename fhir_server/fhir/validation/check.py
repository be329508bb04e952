"""One validation of one resource, as ``$validate`` and ``fhir-server validate`` both run it.

Two engines look at a resource: the R4 JSON schema pass (:func:`fhir_server.fhir.registry.validate`, types,
enumerations, unknown and required elements) and the StructureDefinition walk (:class:`Validator`, cardinality,
bindings, invariants, profiles). Where both find the same cause (a missing required element, an unknown
element) the client gets one issue, not two: the walk's issue is dropped when the schema pass already reported
that problem at that place.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .. import registry
from ..outcome import Issue
from .validator import Validator


def validate(validator: Validator, resource: dict[str, Any], profiles: Iterable[str] = ()) -> list[Issue]:
    """Schema issues, then the validator's issues that say something new (same severity, code and place
    count as the same cause)."""
    first = registry.validate(resource)
    seen = {(i.severity, i.code, i.expression) for i in first}
    rest = validator.validate(resource, list(profiles), meta_profiles=True)
    return first + [i for i in rest if (i.severity, i.code, i.expression) not in seen]
