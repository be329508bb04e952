"""Patient compartments (R4 CompartmentDefinition ``patient``) and reference extraction for the gate.

The parameters come from ``fhir_server/data/compartment-patient.json``, derived from the official definition by
``scripts/derive_compartment.py``; each parameter's expression comes from the search parameter definitions and is
compiled once. Pure: a resource dict in, ids out.

>>> sorted(patients_of({"resourceType": "Observation", "subject": {"reference": "Patient/p1"},
...                     "performer": [{"reference": "Practitioner/d"}]}))
['p1']
>>> patients_of({"resourceType": "Patient", "id": "p2"})
('p2',)
>>> patients_of({"resourceType": "Organization", "id": "o"})
()
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from fhir_server.fhir.search.definitions import params_for
from fhir_server.fhir.search.fhirpath import Evaluator, compile_path
from fhir_server.fhir.search.normalize import split_reference

DATA = Path(__file__).resolve().parent.parent / "data" / "compartment-patient.json"


@cache
def _params() -> dict[str, tuple[str, ...]]:
    raw = json.loads(DATA.read_text())["params"]
    return {rtype: tuple(p for p in params if p != "{def}") for rtype, params in raw.items()}


def compartment_types() -> tuple[str, ...]:
    """Resource types that can be in a Patient compartment (Patient included), sorted."""
    return tuple(sorted(_params()))


def compartment_params(resource_type: str) -> tuple[str, ...]:
    """The search parameters that put a ``resource_type`` in a Patient's compartment (``()``: none)."""
    return _params().get(resource_type, ())


@cache
def _evaluator(resource_type: str, code: str) -> Evaluator | None:
    param = params_for(resource_type).get(code)
    if param is None or param.type != "reference":
        return None
    return compile_path(param.expression)


def references(resource: dict[str, Any], code: str, absolute: bool = False) -> list[tuple[str, str]]:
    """The ``(type, id)`` targets of reference parameter ``code`` in ``resource``; absolute URLs only with
    ``absolute`` (the gate counts ``http://…/Patient/1`` as a Patient reference, to be safe; includes do not)."""
    evaluate = _evaluator(str(resource.get("resourceType")), code)
    if evaluate is None:
        return []
    out: list[tuple[str, str]] = []
    for value, _ in evaluate(resource):
        text = value.get("reference") if isinstance(value, dict) else None
        if isinstance(text, str):
            rtype, rid, url = split_reference(text)
            if rtype and rid and (url is None or absolute) and (rtype, rid) not in out:
                out.append((rtype, rid))
    return out


def reference_params(resource_type: str) -> tuple[str, ...]:
    """Every reference search parameter of a type (``_include=Type:*``)."""
    return tuple(code for code, p in params_for(resource_type).items() if p.type == "reference")


def patients_of(resource: dict[str, Any]) -> tuple[str, ...]:
    """Ids of the Patients whose compartment holds ``resource`` (a Patient is in its own)."""
    rtype = str(resource.get("resourceType"))
    found: list[str] = []
    if rtype == "Patient" and resource.get("id"):
        found.append(str(resource["id"]))
    for code in compartment_params(rtype):
        if code == "{*}":
            continue
        for target, rid in references(resource, code, absolute=True):
            if target == "Patient" and rid not in found:
                found.append(rid)
    return tuple(found)
