"""``Consent/$decide`` in and out: Parameters ↔ :class:`DecisionRequest` / :class:`Decision` (ASCMI.md §4).

In: ``patient`` (valueIdentifier 1..*), ``recipient`` (valueIdentifier 1..*), ``purpose`` (valueCoding 1),
``label`` (valueCoding 0..*), ``time`` (valueDateTime 0..1). Anything else — an unknown parameter name, a
wrong value type, an unknown purpose or label — is a 400 whose issue names the parameter
(``Parameters.parameter[i]``) so a client can find its mistake.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any

from fhir_server.consent.clock import parse_datetime
from fhir_server.consent.labels import canonical_key
from fhir_server.consent.model import DEFAULT_CANONICAL_BASE, Coding, Decision, DecisionRequest, Identifier
from fhir_server.consent.tables import load_tables
from fhir_server.fhir.outcome import BadRequest

_SHAPES = {
    "patient": "valueIdentifier",
    "recipient": "valueIdentifier",
    "purpose": "valueCoding",
    "label": "valueCoding",
    "time": "valueDateTime",
}


def _bad(diagnostics: str, where: str, code: str = "invalid") -> BadRequest:
    error: BadRequest = BadRequest(diagnostics, (where,), code=code)
    return error


def _identifier(value: Any, where: str, name: str) -> Identifier:
    if not isinstance(value, dict) or not isinstance(value.get("value"), str) or not value["value"]:
        raise _bad(f"parameter '{name}' needs a valueIdentifier with a value", where)
    system = value.get("system")
    if system is not None and not isinstance(system, str):
        raise _bad(f"parameter '{name}': identifier system must be a string", where)
    return Identifier(system, value["value"])


def _coding(value: Any, where: str, name: str) -> Coding:
    if not isinstance(value, dict) or not isinstance(value.get("code"), str) or not value["code"]:
        raise _bad(f"parameter '{name}' needs a valueCoding with a code", where)
    system = value.get("system")
    if system is not None and not isinstance(system, str):
        raise _bad(f"parameter '{name}': coding system must be a string", where)
    display = value.get("display") if isinstance(value.get("display"), str) else None
    return Coding(system, value["code"], display)


def by_name(params: Any, shapes: Mapping[str, str], operation: str) -> dict[str, list[tuple[str, Any]]]:
    """A Parameters body's values grouped by name, each with where it was (``Parameters.parameter[i]``), or
    BadRequest (400) for a body that is not Parameters, an unknown name, or a value not of its name's shape
    (``shapes``: name → ``valueX``). Shared by the operations that take Parameters (``$decide``,
    ``$communication-contact``)."""
    if not isinstance(params, dict) or params.get("resourceType") != "Parameters":
        raise _bad("the body must be a Parameters resource", "Parameters", "structure")
    entries = params.get("parameter", [])
    if not isinstance(entries, list):
        raise _bad("Parameters.parameter must be an array", "Parameters.parameter", "structure")
    found: dict[str, list[tuple[str, Any]]] = {name: [] for name in shapes}
    for i, entry in enumerate(entries):
        where = f"Parameters.parameter[{i}]"
        name = entry.get("name") if isinstance(entry, dict) else None
        if not isinstance(name, str) or name not in shapes:
            raise _bad(
                f"unknown parameter {name!r}; {operation} takes {', '.join(shapes)}", where, "not-supported"
            )
        value_keys = [k for k in entry if k.startswith("value")]
        if value_keys != [shapes[name]]:
            raise _bad(f"parameter '{name}' must carry exactly one {shapes[name]}", where)
        found[name].append((where, entry[shapes[name]]))
    return found


def time_parameter(found: Sequence[tuple[str, Any]]) -> date | datetime | None:
    """The first ``time`` value (a valueDateTime) as a date or datetime; None when absent; BadRequest (400) when
    it is not a FHIR dateTime."""
    if not found:
        return None
    where, raw = found[0]
    try:
        time = parse_datetime(raw) if isinstance(raw, str) else None
    except ValueError:
        time = None
    if time is None:
        raise _bad(f"parameter 'time' is not a FHIR dateTime: {raw!r}", where)
    return time


def parse_parameters(params: Any, canonical_base: str = DEFAULT_CANONICAL_BASE) -> DecisionRequest:
    """A ``$decide`` Parameters body → DecisionRequest, or BadRequest (400) naming the offending parameter."""
    found = by_name(params, _SHAPES, "$decide")
    tables = load_tables(canonical_base)

    for name in ("patient", "recipient", "purpose"):
        if not found[name]:
            raise _bad(f"parameter '{name}' is required", name, "required")
    for name in ("purpose", "time"):
        if len(found[name]) > 1:
            raise _bad(f"parameter '{name}' may appear only once", found[name][1][0])

    patient = tuple(_identifier(v, w, "patient") for w, v in found["patient"])
    recipient = tuple(_identifier(v, w, "recipient") for w, v in found["recipient"])
    where, raw = found["purpose"][0]
    purpose = _coding(raw, where, "purpose")
    if tables.purpose_of(purpose.key) is None:
        raise _bad(
            f"purpose {purpose.system or ''}#{purpose.code} is not an ASCMI purpose of use "
            f"(known: {', '.join(tables.purposes)})",
            where,
            "code-invalid",
        )
    labels = []
    for where, raw in found["label"]:
        label = _coding(raw, where, "label")
        key = canonical_key(label, tables)
        if tables.category_of_label(key) is None and not tables.is_never(key):
            raise _bad(
                f"label {label.system or ''}#{label.code} is not an ASCMI security label",
                where,
                "code-invalid",
            )
        labels.append(label)
    return DecisionRequest(patient, recipient, purpose, tuple(labels), time_parameter(found["time"]))


def versioned_url(base_url: str, reference: str) -> str:
    """``Consent/1/_history/2`` under the public base → absolute URL (§5 Absolute URLs)."""
    return f"{base_url.rstrip('/')}/{reference}"


def to_parameters(decision: Decision, base_url: str) -> dict[str, Any]:
    """The ``$decide`` answer as a FHIR Parameters resource."""
    out: list[dict[str, Any]] = [
        {"name": "decision", "valueCode": decision.decision},
        {"name": "consentOnFile", "valueBoolean": decision.consent_on_file},
        {"name": "basis", "valueCode": decision.basis},
    ]
    if decision.consent is not None:
        out.append(
            {
                "name": "consent",
                "valueReference": {"reference": versioned_url(base_url, decision.consent.reference)},
            }
        )
    out += [{"name": "reason", "valueString": r.text} for r in decision.reasons]
    out += [{"name": "obligation", "valueCoding": o.to_json()} for o in decision.obligations]
    out += [
        {
            "name": "label-decision",
            "part": [
                {"name": "label", "valueCoding": ld.label.to_json()},
                {"name": "decision", "valueCode": ld.decision},
            ],
        }
        for ld in decision.label_decisions
    ]
    return {"resourceType": "Parameters", "parameter": out}
