"""$validate engine: time to validate an ASCMI Consent against ASCMIConsent, as a ratio to plain fhir.resources
parsing of the same resource (issue target ≤ 3×). In-process: the engine is pure, HTTP would only add noise."""

from __future__ import annotations

import json
import timeit
from pathlib import Path
from typing import Any

from benchmarks.stats import Row
from fhir_server.ascmi.terminology import conformance_resources
from fhir_server.fhir.registry import model_class
from fhir_server.fhir.validation import DefinitionSource, Validator

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "forms" / "non-ab133-mixed.bundle.json"
PROFILE = "https://ascmi.example.org/fhir/StructureDefinition/ASCMIConsent"


def _consent() -> dict[str, Any]:
    bundle = json.loads(EXAMPLE.read_text())
    consent: dict[str, Any] = next(e["resource"] for e in bundle["entry"]
                                   if e["resource"]["resourceType"] == "Consent")
    return consent


def _best(fn: Any, number: int = 200, repeat: int = 7) -> float:
    return min(timeit.repeat(fn, number=number, repeat=repeat)) / number * 1e6


def run(base: str | None = None) -> list[Row]:
    consent = _consent()
    validator = Validator(DefinitionSource(conformance_resources()))
    issues = validator.validate(consent, [PROFILE])
    errors = [i for i in issues if i.severity == "error"]
    assert not errors, errors
    model = model_class("Consent")
    parse = _best(lambda: model.model_validate(consent))
    profile = _best(lambda: validator.validate(consent, [PROFILE]))
    return [
        Row("fhir.resources parse of an ASCMI Consent", f"{parse:.0f} µs"),
        Row("$validate against ASCMIConsent", f"{profile:.0f} µs", f"{profile / parse:.1f}x", "target ≤ 3x"),
    ]
