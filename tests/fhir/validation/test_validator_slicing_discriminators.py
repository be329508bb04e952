"""Slicing discriminators the HL7 validator understands and we used to refuse valid instances on (issue #20):
``type`` on a choice element below the sliced one, ``type``/``profile`` on ``resolve()``, and ``exists``
(profiling.html#discriminator)."""

from __future__ import annotations

from typing import Any

from fhir_server.fhir.validation import DefinitionSource, Validator, check

CORE = "http://hl7.org/fhir/StructureDefinition/"
EX = "http://example.org/fhir/StructureDefinition/"
OBS = {"resourceType": "Observation", "status": "final", "code": {"text": "x"}}


def sd(name: str, elements: list[dict[str, Any]]) -> dict[str, Any]:
    return {"resourceType": "StructureDefinition", "url": EX + name, "name": name, "status": "active",
            "kind": "resource", "abstract": False, "type": "Observation", "baseDefinition": CORE + "Observation",
            "derivation": "constraint", "differential": {"element": elements}}


BY_TYPE = sd("by-type", [
    {"id": "Observation.component", "path": "Observation.component",
     "slicing": {"discriminator": [{"type": "type", "path": "value"}], "rules": "closed"}},
    {"id": "Observation.component:q", "path": "Observation.component", "sliceName": "q", "min": 1, "max": "1"},
    {"id": "Observation.component:q.value[x]", "path": "Observation.component.value[x]",
     "type": [{"code": "Quantity"}]},
    {"id": "Observation.component:s", "path": "Observation.component", "sliceName": "s", "min": 1, "max": "1"},
    {"id": "Observation.component:s.value[x]", "path": "Observation.component.value[x]",
     "type": [{"code": "string"}]}])
BY_RESOLVE = sd("by-resolve", [
    {"id": "Observation.performer", "path": "Observation.performer",
     "slicing": {"discriminator": [{"type": "type", "path": "resolve()"}], "rules": "open"}},
    {"id": "Observation.performer:pract", "path": "Observation.performer", "sliceName": "pract", "min": 1,
     "max": "1", "type": [{"code": "Reference", "targetProfile": [CORE + "Practitioner"]}]}])
BY_EXISTS = sd("by-exists", [
    {"id": "Observation.identifier", "path": "Observation.identifier",
     "slicing": {"discriminator": [{"type": "exists", "path": "period"}], "rules": "open"}},
    {"id": "Observation.identifier:dated", "path": "Observation.identifier", "sliceName": "dated", "min": 1,
     "max": "1"},
    {"id": "Observation.identifier:dated.period", "path": "Observation.identifier.period", "min": 1}])
VALIDATOR = Validator(DefinitionSource([BY_TYPE, BY_RESOLVE, BY_EXISTS]))


def errors(resource: dict[str, Any], profile: str) -> list[str]:
    return [i.expression[0] if i.expression else "" for i in check.validate(VALIDATOR, resource, [EX + profile])
            if i.severity == "error"]


def test_slices_by_the_type_of_a_choice_value() -> None:
    good = {**OBS, "component": [{"code": {"text": "a"}, "valueString": "x"},
                                 {"code": {"text": "b"}, "valueQuantity": {"value": 1}}]}
    assert errors(good, "by-type") == []
    bad = {**OBS, "component": [{"code": {"text": "a"}, "valueString": "x"},
                                {"code": {"text": "b"}, "valueString": "y"}]}
    assert len(errors(bad, "by-type")) == 2  # slice s twice, slice q missing


def test_slices_by_the_type_of_the_referenced_resource() -> None:
    contained = {**OBS, "contained": [{"resourceType": "Practitioner", "id": "p"}],
                 "performer": [{"reference": "#p"}, {"reference": "Organization/1"}]}
    assert errors(contained, "by-resolve") == []
    assert errors({**OBS, "performer": [{"reference": "Practitioner/9"}]}, "by-resolve") == []
    assert errors({**OBS, "performer": [{"reference": "Organization/1"}]}, "by-resolve") == ["Observation.performer"]


def test_slices_by_existence() -> None:
    good = {**OBS, "identifier": [{"value": "a"}, {"value": "b", "period": {"start": "2020"}}]}
    assert errors(good, "by-exists") == []
    assert errors({**OBS, "identifier": [{"value": "a"}]}, "by-exists") == ["Observation.identifier"]
