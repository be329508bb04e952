"""The CapabilityStatement, generated from what the code supports (not a hand-written document).

Interactions come from the route table the API registers; search parameters from the search definitions;
operations from the operation registry. Anything not wired in does not appear.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from fhir_server.fhir import instant, registry
from fhir_server.fhir.search import definitions

SearchParams = Callable[[str], list[dict[str, Any]]]


def capability_statement(
    base: str,
    type_interactions: Iterable[str],
    system_interactions: Iterable[str],
    search_params: SearchParams,
    type_operations: dict[str, list[dict[str, str]]],
    system_operations: list[dict[str, str]],
    software_version: str,
) -> dict[str, Any]:
    resources = []
    for rtype in sorted(registry.RESOURCE_TYPES):
        entry: dict[str, Any] = {
            "type": rtype,
            "profile": f"http://hl7.org/fhir/StructureDefinition/{rtype}",
            "interaction": [{"code": code} for code in type_interactions],
            "versioning": "versioned-update",
            "readHistory": True,
            "updateCreate": True,
            "conditionalCreate": True,
            "conditionalRead": "full-support",
            "conditionalUpdate": True,
            "conditionalDelete": "multiple",
            "referencePolicy": ["literal", "logical", "local"],
        }
        entry["searchInclude"] = list(definitions.search_includes(rtype))
        revincludes = definitions.search_revincludes(rtype)
        if revincludes:
            entry["searchRevInclude"] = list(revincludes)
        params = search_params(rtype)
        if params:
            entry["searchParam"] = params
        ops = type_operations.get(rtype, []) + type_operations.get("*", [])
        if ops:
            entry["operation"] = ops
        resources.append(entry)
    rest: dict[str, Any] = {
        "mode": "server",
        "documentation": "FHIR R4 server for ASCMI consent interoperability",
        "resource": resources,
        "interaction": [{"code": code} for code in system_interactions],
    }
    if system_operations:
        rest["operation"] = system_operations
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": instant.now(),
        "publisher": "ASCMI FHIR server project",
        "kind": "instance",
        # Bulk Data Access 2.0 ($export: system, Patient and Group level; api/export.py)
        "instantiates": ["http://hl7.org/fhir/uv/bulkdata/CapabilityStatement/bulk-data"],
        "software": {"name": "ascmi-fhir-server", "version": software_version},
        "implementation": {"description": "ASCMI consent interoperability server", "url": base},
        "fhirVersion": "4.0.1",
        "format": ["application/fhir+json", "json"],
        "patchFormat": ["application/json-patch+json"],
        "rest": [rest],
    }
