"""Conformance resources' own rules (searchparameter.html, capabilitystatement.html, codesystem.html#supplements,
structuredefinition.html) and the R4 invariants the HL7 validator reads corrected (que-12)."""

from __future__ import annotations

from typing import Any

import pytest

from fhir_server.fhir.validation import DefinitionSource, Validator, check

BASE_CS = {"resourceType": "CodeSystem", "url": "urn:cs:base", "status": "active", "content": "complete",
           "concept": [{"code": "a"}, {"code": "b"}]}
SUPPLEMENT = {"resourceType": "CodeSystem", "url": "urn:cs:supplement", "status": "active", "content": "supplement",
              "supplements": "urn:cs:base", "concept": [{"code": "a", "designation": [{"value": "Alpha"}]}]}
VALIDATOR = Validator(DefinitionSource([BASE_CS, SUPPLEMENT]))
ORG_NAME = "http://hl7.org/fhir/SearchParameter/Organization-name"


def errors(resource: dict[str, Any]) -> list[str]:
    return [i.diagnostics for i in check.validate(VALIDATOR, resource) if i.severity in ("error", "fatal")]


def search_parameter(**extra: Any) -> dict[str, Any]:
    return {"resourceType": "SearchParameter", "url": "http://example.org/SearchParameter/org-name", "name": "OrgName",
            "status": "active", "description": "x", "code": "oname", "base": ["Organization"], "type": "string",
            "expression": "Organization.name", **extra}


def test_a_search_parameter_derived_from_a_core_one_keeps_its_type_and_base() -> None:
    assert errors(search_parameter(derivedFrom=ORG_NAME)) == []
    assert [e for e in errors(search_parameter(derivedFrom=ORG_NAME, type="token"))] == [
        f"The type 'token' is different to the type 'string' in the derivedFrom SearchParameter {ORG_NAME}"]
    assert len(errors(search_parameter(derivedFrom=ORG_NAME, base=["Patient"], expression="Patient.name"))) == 1


def test_a_search_parameter_expression_must_parse() -> None:
    assert len(errors(search_parameter(expression="Organization.name.where("))) == 1


def test_a_composite_search_parameter_needs_components() -> None:
    found = errors(search_parameter(type="composite", expression="Organization",
                                    component=[{"definition": ORG_NAME, "expression": "name"}]))
    assert "A composite SearchParameter must have at least two components" in found


def test_a_capability_statement_search_param_has_its_definition_type() -> None:
    cs = {"resourceType": "CapabilityStatement", "status": "active", "date": "2024-01-01", "kind": "instance",
          "implementation": {"description": "x"}, "fhirVersion": "4.0.1", "format": ["json"],
          "rest": [{"mode": "server", "resource": [{"type": "Organization", "searchParam": [
              {"name": "name", "definition": ORG_NAME, "type": "token"}]}]}]}
    assert [e for e in errors(cs) if "Type mismatch" in e] == [
        f"Type mismatch - SearchParameter '{ORG_NAME}' type is string, but type here is token"]


def test_a_supplement_is_never_the_system_of_a_coding() -> None:
    obs = {"resourceType": "Observation", "status": "final",
           "code": {"coding": [{"system": "urn:cs:supplement", "code": "a"}]}}
    assert errors(obs) == ["CodeSystem urn:cs:supplement is a supplement, so it can't be used as a value in "
                           "Coding.system"]


def test_a_supplement_only_describes_codes_of_its_base() -> None:
    assert errors(SUPPLEMENT) == []
    bad = {**SUPPLEMENT, "concept": [{"code": "zz", "designation": [{"value": "?"}]}]}
    assert errors(bad) == ["The code 'zz' is not declared in the base CodeSystem urn:cs:base so is not valid in the "
                           "supplement"]


@pytest.mark.parametrize(("path", "count"), [("Observation.code", 0), ("Patient.name", 1), ("Observation..code", 1)])
def test_structure_definition_element_paths_start_with_the_type(path: str, count: int) -> None:
    sd = {"resourceType": "StructureDefinition", "url": "http://example.org/StructureDefinition/o", "name": "O",
          "status": "draft", "kind": "resource", "abstract": False, "type": "Observation",
          "baseDefinition": "http://hl7.org/fhir/StructureDefinition/Observation", "derivation": "constraint",
          "differential": {"element": [{"id": path, "path": path, "mustSupport": True}]}}
    assert len([e for e in errors(sd) if "path" in e]) == count


def test_que_12_asks_for_enable_behavior_with_two_conditions() -> None:
    q = {"resourceType": "Questionnaire", "status": "draft", "item": [
        {"linkId": "a", "type": "integer"}, {"linkId": "b", "type": "integer"},
        {"linkId": "c", "type": "integer", "enableWhen": [
            {"question": "a", "operator": "=", "answerInteger": 1},
            {"question": "b", "operator": "=", "answerInteger": 1}]}]}
    assert [e for e in errors(q) if "que-12" in e]
    q["item"][2]["enableBehavior"] = "all"
    assert errors(q) == []


def test_a_value_set_lists_only_codes_of_its_held_code_system() -> None:
    vs = {"resourceType": "ValueSet", "url": "urn:vs:ab", "status": "active",
          "compose": {"include": [{"system": "urn:cs:base", "concept": [{"code": "a"}, {"code": "zz"}]}]}}
    assert errors(vs) == ["The code 'zz' is not valid in the system urn:cs:base"]


def test_validating_a_profile_says_why_it_cannot_be_used() -> None:
    sd = {"resourceType": "StructureDefinition", "url": "http://example.org/StructureDefinition/o", "name": "O",
          "status": "draft", "kind": "resource", "abstract": False, "type": "Observation",
          "baseDefinition": "http://hl7.org/fhir/StructureDefinition/Observation", "derivation": "constraint",
          "differential": {"element": [{"id": "Observation.status", "path": "Observation.status", "min": 1}]}}
    assert errors(sd) == []
    sd["differential"]["element"][0].update(id="Observation.nothing", path="Observation.nothing")
    assert [e for e in errors(sd) if "cannot be used" in e]
