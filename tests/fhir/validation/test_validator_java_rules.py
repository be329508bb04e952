"""Rules where the HL7 validator and we used to disagree (issue #20): extension values of a type their definition
does not allow, complex fixed/pattern values reported per element, invariants that use resolve()."""

from __future__ import annotations

from typing import Any

from fhir_server.fhir.validation import DefinitionSource, Validator, check

CORE = "http://hl7.org/fhir/StructureDefinition/"
EX = "http://example.org/fhir/StructureDefinition/"
MR = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR"}]}
PATTERN = {"resourceType": "StructureDefinition", "url": EX + "pid", "name": "Pid", "status": "active",
           "kind": "resource", "abstract": False, "type": "Patient", "baseDefinition": CORE + "Patient",
           "derivation": "constraint", "differential": {"element": [
               {"id": "Patient.identifier", "path": "Patient.identifier",
                "patternIdentifier": {"type": MR, "system": "urn:oid:1.2.3"}}]}}
VALIDATOR = Validator(DefinitionSource([PATTERN]))


def errors(resource: dict[str, Any], *profiles: str) -> list[tuple[str, str]]:
    return [(i.expression[0] if i.expression else "", i.diagnostics)
            for i in check.validate(VALIDATOR, resource, profiles) if i.severity == "error"]


def test_an_extension_value_of_a_type_not_allowed_is_one_error() -> None:
    resource = {"resourceType": "Patient", "extension": [{"url": CORE + "patient-birthPlace", "valueString": "x"}]}
    assert [w for w, _ in errors(resource)] == ["Patient.extension[0].valueString"]


def test_an_unknown_choice_type_elsewhere_is_also_a_missing_value() -> None:
    group = {"resourceType": "Group", "type": "person", "actual": True,
             "characteristic": [{"code": {"text": "c"}, "valueInteger": 1, "exclude": False}]}
    assert sorted(w for w, _ in errors(group)) == ["Group.characteristic[0].value",
                                                   "Group.characteristic[0].valueInteger"]


def test_a_complex_pattern_is_reported_per_element() -> None:
    patient = {"resourceType": "Patient", "identifier": [
        {"type": MR, "system": "urn:oid:1.2.3", "value": "1"}, {"system": "urn:oid:1.2.9", "value": "2"}]}
    found = errors(patient, EX + "pid")
    assert sorted(w for w, _ in found) == ["Patient.identifier[1].system", "Patient.identifier[1].type"]
    assert any("'urn:oid:1.2.9'" in d and "'urn:oid:1.2.3'" in d for _, d in found)


def test_a_codeable_concept_pattern_not_found_is_one_error_at_the_element() -> None:
    patient = {"resourceType": "Patient", "identifier": [
        {"type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "DL"}]},
         "system": "urn:oid:1.2.3"}]}
    assert [w for w, _ in errors(patient, EX + "pid")] == ["Patient.identifier[0].type"]


def test_invariants_using_resolve_see_contained_and_literal_references() -> None:
    def team(member: dict[str, Any]) -> dict[str, Any]:
        return {"resourceType": "CareTeam", "contained": [{"resourceType": "Practitioner", "id": "pr"},
                                                          {"resourceType": "Patient", "id": "pa"}],
                "participant": [{"member": member, "onBehalfOf": {"display": "Acme"}}],
                "subject": {"reference": "#pa"}, "note": [{"text": "#pr"}]}
    for good in ({"reference": "#pr"}, {"reference": "Practitioner/7"}):
        assert [d for _, d in errors(team(good)) if "ctm-1" in d] == []
    for bad in ({"reference": "#pa"}, {"reference": "Patient/7"}):
        assert [w for w, d in errors(team(bad)) if "ctm-1" in d] == ["CareTeam.participant[0]"]
