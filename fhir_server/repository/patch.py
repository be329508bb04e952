"""PATCH with JSON Patch (RFC 6902), for single resources and inside transactions."""

from __future__ import annotations

import base64
import copy
from typing import Any

import jsonpatch

from fhir_server.fhir import jsonio
from fhir_server.fhir.outcome import BadRequest, FHIRError


def patch_from_binary(resource: dict[str, Any]) -> Any:
    """In a Bundle a JSON Patch travels as a Binary (contentType application/json-patch+json, data base64)."""
    if resource.get("resourceType") != "Binary" or "json-patch" not in str(resource.get("contentType", "")):
        raise FHIRError(422, "not-supported", "a PATCH entry must carry a Binary with contentType "
                        "application/json-patch+json (FHIRPath Patch is not supported)")
    data = resource.get("data", "")
    if not isinstance(data, str):
        raise BadRequest("Binary.data must be a base64 string holding the JSON Patch", code="structure")
    try:
        return jsonio.loads(base64.b64decode(data, validate=True))
    except (ValueError, jsonio.InvalidJSON) as exc:
        raise BadRequest(f"the Binary does not hold a JSON Patch document: {exc}") from None


def apply(document: dict[str, Any], operations: Any) -> dict[str, Any]:
    """Apply a JSON Patch; a patch that does not apply (bad path, failed test) → 422."""
    if not isinstance(operations, list):
        raise BadRequest("a JSON Patch document is an array of operations", code="structure")
    try:
        patched = jsonpatch.JsonPatch(operations).apply(copy.deepcopy(document))
    except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException, TypeError, KeyError,
            ValueError, IndexError) as exc:
        raise FHIRError(422, "processing", f"the JSON Patch cannot be applied: {exc}") from None
    if not isinstance(patched, dict):
        raise FHIRError(422, "processing", "the JSON Patch must leave a resource (a JSON object)")
    return patched
