"""The R4 resource registry: which types exist, and structural validation of a resource.

This is the only module that imports ``fhir.resources``. We speak FHIR 4.0.1 on the wire; the library's models
are R4B, which match R4 for every type both releases share. The 18 R4 types R4B dropped (MedicinalProduct*,
Substance{NucleicAcid,Polymer,Protein,ReferenceInformation,SourceMaterial,Specification},
{Effect,Risk}EvidenceSynthesis) are checked against the official R4 JSON Schema instead.
"""

from __future__ import annotations

import gzip
import json
import re
from functools import cache
from importlib import resources as package_files
from typing import Any

from fhir.resources.R4B import get_fhir_model_class
from pydantic import ValidationError

from fhir_server.fhir.outcome import Issue


def _data(name: str) -> Any:
    ref = package_files.files("fhir_server.data").joinpath(name)
    raw = ref.read_bytes()
    return json.loads(gzip.decompress(raw) if name.endswith(".gz") else raw)


_R4 = _data("r4-resources.json")["resources"]
RESOURCE_TYPES: frozenset[str] = frozenset(_R4)
_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")


def is_resource_type(name: str) -> bool:
    return name in RESOURCE_TYPES


def is_valid_id(value: object) -> bool:
    """FHIR ``id``: 1–64 of ``[A-Za-z0-9\\-.]``."""
    return isinstance(value, str) and bool(_ID.match(value))


def summary_elements(resource_type: str) -> list[str]:
    """Top-level elements marked isSummary (choice elements end in ``[x]``)."""
    return _R4[resource_type]["summary"]


def required_elements(resource_type: str) -> list[str]:
    return _R4[resource_type]["required"]


@cache
def _model(resource_type: str) -> Any | None:
    try:
        return get_fhir_model_class(resource_type)
    except (KeyError, ValueError):
        return None


def model_class(resource_type: str) -> Any:
    """The fhir.resources model for building resources in domain code (ASCMI mapping)."""
    model = _model(resource_type)
    if model is None:
        raise KeyError(resource_type)
    return model


def _fhirpath(resource_type: str, loc: tuple[int | str, ...] | list[Any]) -> str:
    path = resource_type
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part in ("__root__", "resourceType") or str(part).startswith("function-"):
            continue
        else:
            path += f".{part}"
    return path


_PYDANTIC_CODES = {
    "missing": "required",
    "extra_forbidden": "structure",
    "value_error": "value",
    "string_pattern_mismatch": "value",
    "literal_error": "code-invalid",
    "enum": "code-invalid",
}


def _pydantic_issues(resource_type: str, error: ValidationError) -> list[Issue]:
    issues = []
    for err in error.errors(include_url=False):
        loc = tuple(err.get("loc", ()))
        msg = err.get("msg", "invalid value")
        code = _PYDANTIC_CODES.get(err.get("type", ""), "value")
        if "required" in msg.lower() and code == "value":
            code = "required"
        where = _fhirpath(resource_type, loc)
        issues.append(Issue("error", code, f"{where}: {msg}", (where,)))
    return issues


@cache
def _r4_schema() -> dict[str, Any]:
    return _data("r4-fhir-schema.json.gz")


@cache
def _schema_validator(resource_type: str) -> Any:
    from jsonschema import Draft6Validator

    schema = dict(_r4_schema())
    schema.pop("oneOf", None)
    schema.pop("discriminator", None)
    schema["$ref"] = f"#/definitions/{resource_type}"
    return Draft6Validator(schema)


def _schema_issues(resource_type: str, resource: dict[str, Any]) -> list[Issue]:
    issues = []
    for err in _schema_validator(resource_type).iter_errors(resource):
        where = _fhirpath(resource_type, list(err.absolute_path))
        code = {"additionalProperties": "structure", "required": "required"}.get(str(err.validator), "value")
        issues.append(Issue("error", code, f"{where}: {err.message[:300]}", (where,)))
    return issues


def validate(resource: dict[str, Any]) -> list[Issue]:
    """Structural validation of a resource against R4; an empty list means valid.

    Checks types, cardinality of required elements, code enumerations and unknown elements.
    """
    resource_type = resource.get("resourceType")
    if not isinstance(resource_type, str) or resource_type not in RESOURCE_TYPES:
        return [Issue("error", "not-supported", f"unknown resource type {resource_type!r}", ("resourceType",))]
    model = _model(resource_type)
    if model is None:
        return _schema_issues(resource_type, resource)
    try:
        model.model_validate(resource)
    except ValidationError as exc:
        return _pydantic_issues(resource_type, exc)
    except (ValueError, TypeError, RecursionError) as exc:  # library-level rejections
        return [Issue("error", "value", f"{resource_type}: {str(exc)[:300]}", (resource_type,))]
    return []
