"""The pure labeller: how ValueSet compose rules compile, and what it reads (no database)."""

from __future__ import annotations

from typing import Any

import pytest

from fhir_server.consent import sls
from fhir_server.repository.labels import CATEGORY_LABELS

ICD = sls.ICD10CM


def vs(category: str, *include: dict[str, Any], exclude: tuple[dict[str, Any], ...] = ()) -> dict[str, Any]:
    return {"resourceType": "ValueSet", "id": f"ascmi-sls-{category}",
            "compose": {"include": list(include), "exclude": list(exclude)}}


def is_a(system: str, code: str) -> dict[str, Any]:
    return {"system": system, "filter": [{"property": "concept", "op": "is-a", "value": code}]}


def condition(system: str, code: str) -> dict[str, Any]:
    return {"resourceType": "Condition", "code": {"coding": [{"system": system, "code": code}]}}


def codes(labeller: sls.Labeller, resource: dict[str, Any]) -> set[str]:
    return {lab["code"] for lab in labeller.labels(resource)}


@pytest.mark.parametrize(("code", "expected"), [
    ("F10", {"SUD", "ETH"}), ("F10.1", {"SUD", "ETH"}), ("F10.239", {"SUD", "ETH"}), ("f10.20", {"SUD", "ETH"}),
    ("F1", set()), ("F100", {"SUD", "ETH"}), ("F20", set()), ("XF10", set()),
])
def test_an_icd10_is_a_filter_is_a_code_prefix_rule(code: str, expected: set[str]) -> None:
    lab = sls.compile_value_sets([vs("substance-use", is_a(ICD, "F10"))], CATEGORY_LABELS)
    assert codes(lab, condition(ICD, code)) == expected


def test_is_a_outside_icd10_is_the_code_itself_and_exclusions_win() -> None:
    sct = "http://snomed.info/sct"
    lab = sls.compile_value_sets([vs("hiv", is_a(sct, "86406008"), is_a(sls.ICD10, "B20"),
                                     exclude=({"system": sls.ICD10, "concept": [{"code": "B20.7"}]},))],
                                 CATEGORY_LABELS)
    assert codes(lab, condition(sct, "86406008")) == {"HIV"}
    assert codes(lab, condition(sct, "8640600")) == set()
    assert codes(lab, condition(sls.ICD10, "B20.1")) == {"HIV"}
    assert codes(lab, condition(sls.ICD10, "B20.7")) == set()
    assert lab.ignored == ()


def test_rules_it_cannot_apply_are_reported_not_guessed() -> None:
    lab = sls.compile_value_sets([
        vs("hiv", {"system": "http://loinc.org"}, {"valueSet": ["http://x/vs"]},
           {"system": ICD, "filter": [{"property": "concept", "op": "regex", "value": "B2.*"}]},
           {"system": ICD, "filter": [{"property": "concept", "op": "is-a", "value": "B20"},
                                      {"property": "concept", "op": "is-a", "value": "Z21"}]}),
        vs("substance-use-part2", {"system": ICD, "concept": [{"code": "F11.20"}]}),
        vs("general-health", {"system": ICD, "concept": [{"code": "J06.9"}]}),
        vs("no-such-category", {"system": ICD, "concept": [{"code": "J06.9"}]}),
    ], CATEGORY_LABELS)
    assert len(lab.ignored) == 7
    assert codes(lab, condition(ICD, "B20")) == set()
    assert codes(lab, condition(ICD, "F11.20")) == set()


def test_merge_keeps_what_is_there_and_adds_only_what_is_missing() -> None:
    hiv = {"system": sls.ACT, "code": "HIV"}
    resource = {"resourceType": "Condition", "meta": {"source": "s", "security": [hiv]}}
    assert sls.merge(resource, [hiv]) is resource
    merged = sls.merge(resource, [hiv, sls.PART2])
    assert merged["meta"] == {"source": "s", "security": [hiv, sls.PART2]}
    assert resource["meta"]["security"] == [hiv]  # the input is not changed
