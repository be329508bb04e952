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
