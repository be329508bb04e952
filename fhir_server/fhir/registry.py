"""The R4 resource registry: which types exist, and structural validation of a resource on write.

This is the only module that imports ``fhir.resources`` (its R4B models serve domain code that builds
resources, e.g. the ASCMI mapping, through :func:`model_class`).

Validation on write uses the official R4 (4.0.1) JSON Schema, compiled once with jsonschema-rs, plus the
required top-level elements from the R4 StructureDefinitions — see docs/architecture.md for why: it is exact
for all 147 R4 types (R4B dropped 18 of them and changed others), and it costs ~15 µs per resource where
fhir.resources costs 200–350 µs, which dominated transaction ingest. Only an invalid resource pays for a
second, explaining pass (python-jsonschema) that locates every problem precisely.
"""

from __future__ import annotations

import gzip
import json
import re
from functools import cache
from importlib import resources as package_files
from typing import Any

import orjson
from fhir.resources.R4B import get_fhir_model_class

from fhir_server.fhir.instant import parse_datetime
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


_DATE_TYPES = ("date", "dateTime", "instant")


def _real_date(value: object) -> bool:
    """The schema's regexes admit 2021-02-30; a FHIR date must be a real calendar date."""
    return not isinstance(value, str) or parse_datetime(value) is not None


# FHIR integers are 32-bit; the schema types them as any JSON number.
_INTEGER_RANGES = {"integer": -2_147_483_648, "positiveInt": 1, "unsignedInt": 0}

@cache
def _r4_schema() -> dict[str, Any]:
    schema: dict[str, Any] = _data("r4-fhir-schema.json.gz")
    defs = schema["definitions"]
    # Primitive definitions are also inlined into properties: patch every copy, found by its pattern.
    patches: dict[str, dict[str, Any]] = {defs[name]["pattern"]: {"format": "fhir-date"} for name in _DATE_TYPES}
    for name, low in _INTEGER_RANGES.items():
        patches[defs[name]["pattern"]] = {"minimum": low, "maximum": 2_147_483_647}
    _patch(schema, patches)
    # Complex types are described by their properties only, so `"meta": true` would pass: require objects.
    for definition in defs.values():
        if isinstance(definition, dict) and "properties" in definition:
            definition.setdefault("type", "object")
    defs["xhtml"].setdefault("type", "string")  # Narrative.div
    _add_primitive_companions(defs)
    return schema


def _add_primitive_companions(defs: dict[str, Any]) -> None:
    """The published R4 schema omits the ``_name`` companion of some primitives (every ``canonical``, e.g.
    ``ElementDefinition.type._profile``), so valid extensions on those values were refused. JSON
    (json.html#primitive) allows ``_name`` for every primitive element: add the missing ones."""
    primitives = {name for name, d in defs.items() if isinstance(d, dict) and "properties" not in d
                  and name not in ("ResourceList", "xhtml")}
    element = {"$ref": "#/definitions/Element"}
    for definition in defs.values():
        props = definition.get("properties") if isinstance(definition, dict) else None
        if not isinstance(props, dict):
            continue
        for name, prop in list(props.items()):
            if name.startswith("_") or name in ("id", "resourceType") or f"_{name}" in props:
                continue
            ref = prop.get("$ref") or (prop.get("items") or {}).get("$ref")
            if isinstance(ref, str) and ref.rsplit("/", 1)[-1] in primitives:
                props[f"_{name}"] = {"type": "array", "items": element} if "items" in prop else element


def _patch(node: Any, patches: dict[str, dict[str, Any]]) -> None:
    if isinstance(node, dict):
        pattern = node.get("pattern")
        extra = patches.get(pattern) if isinstance(pattern, str) else None
        if extra:
            node.update(extra)
        for value in node.values():
            _patch(value, patches)
    elif isinstance(node, list):
        for value in node:
            _patch(value, patches)


@cache
def _fast_validator() -> Any:
    """jsonschema-rs over the whole official R4 schema: ~15 µs per resource (fhir.resources: 200–350 µs)."""
    import jsonschema_rs

    return jsonschema_rs.Draft7Validator(_r4_schema(), formats={"fhir-date": _real_date}, validate_formats=True)


@cache
def _explaining_validator(resource_type: str) -> Any:
    """Python jsonschema for one type: slow, but only asked to explain a resource already known invalid."""
    from jsonschema import Draft6Validator, FormatChecker

    schema = {k: v for k, v in _r4_schema().items() if k not in ("oneOf", "discriminator")}
    schema["$ref"] = f"#/definitions/{resource_type}"
    checker = FormatChecker(formats=())
    checker.checks("fhir-date")(_real_date)
    return Draft6Validator(schema, format_checker=checker)


_SCHEMA_CODES = {"additionalProperties": "structure", "required": "required", "enum": "code-invalid",
                 "format": "value"}


def _schema_issues(resource_type: str, resource: dict[str, Any]) -> list[Issue]:
    issues = []
    for err in _explaining_validator(resource_type).iter_errors(resource):
        where = _fhirpath(resource_type, list(err.absolute_path))
        if err.validator == "required" and isinstance(err.instance, dict):
            missing = [k for k in err.validator_value if k not in err.instance]
            if missing:
                where = f"{where}.{missing[0]}"
        if err.validator == "additionalProperties" and isinstance(err.instance, dict):
            known = err.schema.get("properties", {})
            for key in [k for k in err.instance if k not in known]:
                at = f"{where}.{key}"
                issues.append(Issue("error", "structure", f"{at}: unknown element {key!r}", (at,)))
            continue
        message = err.message if len(err.message) < 300 else err.message[:300] + "…"
        issues.append(Issue("error", _SCHEMA_CODES.get(str(err.validator), "value"), f"{where}: {message}",
                            (where,)))
    return issues or [Issue("error", "structure", f"{resource_type} does not conform to the R4 JSON schema",
                            (resource_type,))]


def _missing_required(resource_type: str, resource: dict[str, Any]) -> list[Issue]:
    """Required top-level elements; the JSON schema cannot require primitives (they may come as ``_x``)."""
    issues = []
    for name in required_elements(resource_type):
        if name.endswith("[x]"):
            stem = name[:-3]
            present = any(k.startswith(stem) and k[len(stem):len(stem) + 1].isupper() for k in resource)
        else:
            present = name in resource or f"_{name}" in resource
        if not present:
            where = f"{resource_type}.{name.removesuffix('[x]')}"
            issues.append(Issue("error", "required", f"{where} is required (minimum cardinality 1)", (where,)))
    return issues


def _plain(resource: dict[str, Any]) -> Any:
    """The resource with decimals as plain floats (jsonschema-rs accepts only built-in JSON types)."""
    return orjson.loads(orjson.dumps(resource, default=_decimal_text))


def _decimal_text(value: Any) -> Any:
    text = getattr(value, "text", None)
    return orjson.Fragment(text if text is not None else str(value))


def validate(resource: dict[str, Any]) -> list[Issue]:
    """Structural validation of a resource against R4; an empty list means valid.

    Checks types, cardinality of required elements, code enumerations and unknown elements.
    """
    resource_type = resource.get("resourceType")
    if not isinstance(resource_type, str) or resource_type not in RESOURCE_TYPES:
        return [Issue("error", "not-supported", f"unknown resource type {resource_type!r}", ("resourceType",))]
    try:
        plain = _plain(resource)
    except (TypeError, orjson.JSONEncodeError) as exc:
        return [Issue("error", "structure", f"{resource_type}: not representable as JSON ({exc})", (resource_type,))]
    if not _fast_validator().is_valid(plain):
        return _schema_issues(resource_type, resource)
    return _missing_required(resource_type, resource)
