"""Local reference checking: ``Type/id`` references must point at resources the server holds.

Servers that receive partial data can turn this off (setting ``check_references``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from fhir_server.fhir import registry


def iter_references(node: Any, path: str) -> Iterator[tuple[str, str]]:
    """Every ``Reference.reference`` string in a resource, with a FHIRPath-ish location.

    >>> list(iter_references({"subject": {"reference": "Patient/1"}}, "Observation"))
    [('Observation.subject.reference', 'Patient/1')]
    """
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "reference" and isinstance(value, str):
                yield f"{path}.reference", value
            elif key == "contained" or (key == "resource" and isinstance(value, dict) and "resourceType" in value):
                continue  # a contained resource, or a Bundle entry's: its references resolve inside the container
            elif isinstance(value, dict | list):
                yield from iter_references(value, f"{path}.{key}")
    elif isinstance(node, list):
        for i, item in enumerate(node):
            yield from iter_references(item, f"{path}[{i}]")


def reference_strings(node: Any) -> list[str]:
    """The values :func:`iter_references` yields, in its order, without building location strings (a write checks
    every reference; only a failing one needs its location, found again with :func:`location_of`).

    >>> reference_strings({"subject": {"reference": "Patient/1"}, "contained": [{"reference": "Patient/2"}]})
    ['Patient/1']
    """
    found: list[str] = []
    _strings(node, found)
    return found


def _strings(node: Any, found: list[str]) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "reference" and isinstance(value, str):
                found.append(value)
            elif key == "contained" or (key == "resource" and isinstance(value, dict) and "resourceType" in value):
                continue
            elif isinstance(value, dict | list):
                _strings(value, found)
    elif isinstance(node, list):
        for item in node:
            if isinstance(item, dict | list):
                _strings(item, found)


def location_of(resource: dict[str, Any], reference: str) -> str:
    """Where ``reference`` first occurs in ``resource`` (as :func:`iter_references` names it)."""
    rtype = str(resource.get("resourceType", ""))
    return next((where for where, value in iter_references(resource, rtype) if value == reference), rtype)


def local_target(reference: str, base_url: str | None = None) -> tuple[str, str] | None:
    """``(type, id)`` of a local relative (or own-base absolute) reference, else None.

    >>> local_target("Patient/123/_history/2")
    ('Patient', '123')
    >>> local_target("http://elsewhere.org/fhir/Patient/1") is None
    True
    """
    if base_url and reference.startswith(base_url.rstrip("/") + "/"):
        reference = reference[len(base_url.rstrip("/")) + 1 :]
    if "?" in reference or "://" in reference or reference.startswith(("#", "urn:")):
        return None
    parts = reference.split("/")
    if len(parts) not in (2, 4) or not registry.is_resource_type(parts[0]):
        return None
    if len(parts) == 4 and parts[2] != "_history":
        return None
    return parts[0], parts[1]
