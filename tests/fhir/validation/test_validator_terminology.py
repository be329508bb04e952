"""ValueSet expansion from compose: whole systems, concept lists, filters, imports, excludes."""

from __future__ import annotations

from typing import Any

import pytest

from fhir_server.fhir.validation.terminology import expand

CS = {
    "url": "urn:cs",
    "content": "complete",
    "concept": [
        {"code": "a", "concept": [{"code": "a1", "concept": [{"code": "a11"}]}, {"code": "a2"}]},
        {"code": "b"},
        {"code": "c", "property": [{"code": "subsumedBy", "valueCode": "b"}]},
    ],
}
OTHER_VS = {"url": "urn:vs:other", "compose": {"include": [{"system": "urn:x", "concept": [{"code": "x"}]}]}}
VALUE_SETS = {"urn:vs:other": OTHER_VS}


def members(compose: dict[str, Any]) -> set[tuple[str, str]]:
    exp = expand({"compose": compose}, VALUE_SETS.get, {"urn:cs": CS}.get)
    return {(s, c) for s, codes in exp.codes.items() for c in codes}


@pytest.mark.parametrize(
    ("compose", "expected"),
    [
        ({"include": [{"system": "urn:cs"}]}, {"a", "a1", "a11", "a2", "b", "c"}),
        ({"include": [{"system": "urn:cs", "concept": [{"code": "b"}]}]}, {"b"}),
        (
            {
                "include": [
                    {"system": "urn:cs", "filter": [{"property": "concept", "op": "is-a", "value": "a1"}]}
                ]
            },
            {"a1", "a11"},
        ),
        (
            {
                "include": [
                    {
                        "system": "urn:cs",
                        "filter": [{"property": "concept", "op": "descendent-of", "value": "a"}],
                    }
                ]
            },
            {"a1", "a11", "a2"},
        ),
        (
            {
                "include": [
                    {"system": "urn:cs", "filter": [{"property": "concept", "op": "is-a", "value": "b"}]}
                ]
            },
            {"b", "c"},
        ),
        (
            {
                "include": [{"system": "urn:cs"}],
                "exclude": [{"system": "urn:cs", "concept": [{"code": "a"}]}],
            },
            {"a1", "a11", "a2", "b", "c"},
        ),
    ],
)
def test_compose_expands_to_the_expected_codes(compose: dict[str, Any], expected: set[str]) -> None:
    assert members(compose) == {("urn:cs", c) for c in expected}


def test_imported_value_set_is_unioned() -> None:
    assert ("urn:x", "x") in members({"include": [{"valueSet": ["urn:vs:other"]}]})


def test_unknown_code_system_makes_membership_undecidable_rather_than_false() -> None:
    exp = expand({"compose": {"include": [{"system": "http://loinc.org"}]}}, VALUE_SETS.get, {}.get)
    assert exp.contains("http://loinc.org", "59284-0") is None
    assert exp.contains("urn:other", "x") is False


def test_cyclic_value_set_imports_do_not_recurse_forever() -> None:
    loop = {"url": "urn:vs:loop", "compose": {"include": [{"valueSet": ["urn:vs:loop"]}]}}
    exp = expand(loop, {"urn:vs:loop": loop}.get, {}.get)
    assert exp.contains("urn:any", "x") is None


PROPS_CS = {
    "url": "urn:cs:p", "content": "complete",
    "concept": [
        {"code": "x", "display": "Ex", "property": [{"code": "status", "valueCode": "active"}],
         "concept": [{"code": "x1", "property": [{"code": "status", "valueCode": "retired"}]}]},
        {"code": "y", "designation": [{"value": "Why"}]},
    ],
}


@pytest.mark.parametrize(
    ("flt", "expected"),
    [
        ({"property": "concept", "op": "generalizes", "value": "x1"}, {"x", "x1"}),
        ({"property": "concept", "op": "not-in", "value": "x,y"}, {"x1"}),
        ({"property": "status", "op": "=", "value": "retired"}, {"x1"}),
        ({"property": "status", "op": "in", "value": "active,retired"}, {"x", "x1"}),
        ({"property": "status", "op": "not-in", "value": "active"}, {"x1", "y"}),
        ({"property": "status", "op": "exists", "value": "false"}, {"y"}),
        ({"property": "status", "op": "regex", "value": "ret.*"}, {"x1"}),
    ],
)
def test_value_set_filters_over_a_held_code_system(flt: dict[str, Any], expected: set[str]) -> None:
    exp = expand({"compose": {"include": [{"system": "urn:cs:p", "filter": [flt]}]}}, VALUE_SETS.get,
                 {"urn:cs:p": PROPS_CS}.get)
    assert set(exp.codes.get("urn:cs:p", ())) == expected


def _validator() -> Any:
    from fhir_server.fhir.validation import DefinitionSource, Validator

    return Validator(DefinitionSource([{**PROPS_CS, "resourceType": "CodeSystem", "status": "active"},
                                       {"resourceType": "ValueSet", "url": "urn:vs:p", "status": "active",
                                        "compose": {"include": [{"system": "urn:cs:p"}]}}]))


def test_an_unknown_code_of_a_held_complete_code_system_is_an_error_without_any_binding() -> None:
    from fhir_server.fhir.validation import check

    obs = {"resourceType": "Observation", "status": "final", "code": {"text": "t"},
           "valueCodeableConcept": {"coding": [{"system": "urn:cs:p", "code": "nope"}]}}
    found = [(i.severity, i.expression) for i in check.validate(_validator(), obs) if i.severity == "error"]
    assert found == [("error", ("Observation.valueCodeableConcept.coding[0]",))]


def test_a_display_the_code_system_does_not_give_is_a_warning() -> None:
    from fhir_server.fhir.validation import check

    def warnings(display: str) -> list[str]:
        obs = {"resourceType": "Observation", "status": "final", "code": {"text": "t"},
               "valueCodeableConcept": {"coding": [{"system": "urn:cs:p", "code": "y", "display": display}]}}
        return [i.diagnostics for i in check.validate(_validator(), obs)
                if i.severity == "warning" and "Display" in i.diagnostics]

    assert warnings("why") == []  # a designation, compared without case
    assert warnings("Wrong") == ["Wrong Display Name 'Wrong' for urn:cs:p#y: should be one of 'Why'"]
