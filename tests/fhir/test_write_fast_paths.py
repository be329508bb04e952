"""The write path's shortcuts (issue #16) give the same answers as the general code they skip.

- :func:`fhirpath._field_chain` (plain field walks) vs the general step chain, for every search parameter of
  every covered type, on the extraction test resources;
- ``rewrite_references`` / ``conditional_references`` skip their walks only when there is nothing to do;
- ``reference_strings`` yields what ``iter_references`` yields, and a failed check still names the element.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from fhir_server.fhir.bundle import plan as planner
from fhir_server.fhir.search import fhirpath
from fhir_server.fhir.search.definitions import params_for
from fhir_server.repository.references import iter_references, location_of, reference_strings
from tests.fhir.search.resources import RESOURCES


def _general(expression: str) -> fhirpath.Evaluator | None:
    members = [m for m in expression.split(" | ")]
    parsed = [fhirpath._parse_path(m, False) for m in members]
    if any(p is None for p in parsed):
        return None
    chains = [fhirpath._chain(p) for p in parsed if p is not None]
    return lambda r: [item for c in chains for item in c(r)]


@pytest.mark.parametrize("rtype", sorted(RESOURCES))
def test_field_chains_match_the_general_evaluator(rtype: str) -> None:
    resource = RESOURCES[rtype]
    fast_used = 0
    for p in params_for(rtype).values():
        if not p.expression:
            continue
        general = _general(p.expression)
        if general is None:
            continue
        fast = [fhirpath._field_chain(m, False) for m in p.expression.split(" | ")]
        fast_used += sum(f is not None for f in fast)
        with fhirpath.memo_scope():
            expected = general(resource)
        assert fhirpath.compile_path(p.expression)(resource) == expected, p.code
    assert fast_used  # the shortcut is exercised for every type


def test_field_chain_refuses_filters_and_scans_choice_elements_like_the_general_chain() -> None:
    assert fhirpath._field_chain("Patient.telecom.where(system='email')", False) is None
    value = fhirpath._field_chain("Observation.value", False)
    assert value is not None
    assert value({"resourceType": "Observation", "valueQuantity": {"value": 1}}) == [({"value": 1}, "Quantity")]
    source = fhirpath._field_chain("Resource.meta.source", False)  # `source` is a choice in Consent, not in Meta
    assert source is not None
    assert source({"resourceType": "Consent", "meta": {"source": "urn:s"}, "sourceUri": "x"}) == [("urn:s", None)]
    nested = fhirpath._field_chain("Observation.component.value", False)
    assert nested is not None
    assert nested({"resourceType": "Observation", "component": [{"valueString": "a"}, {"valueInteger": 2}]}) == [
        ("a", "String"), (2, "Integer")]
    chain = fhirpath._field_chain("Patient.address.line", False)
    assert chain is not None
    assert chain({"resourceType": "Patient", "address": [{"line": ["A", "B"]}, {"line": ["C"]}]}) == [
        ("A", None), ("B", None), ("C", None)]
    assert chain({"resourceType": "Group", "address": [{"line": ["A"]}]}) == []


def test_rewrite_keeps_the_dict_when_nothing_maps() -> None:
    resource = {"resourceType": "Consent", "patient": {"reference": "Patient/1"}}
    assert planner.rewrite_references(resource, {"urn:uuid:9": "Patient/9"}) is resource
    rewritten = planner.rewrite_references(resource, {"Patient/1": "Patient/2"})
    assert rewritten == {"resourceType": "Consent", "patient": {"reference": "Patient/2"}}
    assert resource["patient"]["reference"] == "Patient/1"  # the input is not changed in place
    narrative = {"resourceType": "Consent", "text": {"div": "<div>urn:uuid:9</div>"}}
    assert planner.rewrite_references(narrative, {"urn:uuid:9": "Patient/9"})["text"]["div"] == "<div>Patient/9</div>"
    attachment = {"resourceType": "DocumentReference", "content": [{"attachment": {"url": "urn:uuid:9"}}]}
    assert planner.rewrite_references(attachment, {"urn:uuid:9": "Binary/9"})["content"][0]["attachment"] == {
        "url": "Binary/9"}


def test_conditional_references_found_in_contained_and_nested() -> None:
    resource = {"resourceType": "Consent", "provision": {"actor": [{"reference": {
        "reference": "Organization?identifier=x|1"}}]}, "contained": [{"resourceType": "Patient", "link": [
            {"other": {"reference": "Patient?identifier=y|2"}}]}]}
    assert planner.conditional_references(resource, "Consent") == [
        ("Consent.provision.actor[0].reference.reference", "Organization?identifier=x|1"),
        ("Consent.contained[0].link[0].other.reference", "Patient?identifier=y|2")]
    assert planner.conditional_references({"resourceType": "Consent", "patient": {"reference": "Patient/1"}},
                                          "Consent") == []


@pytest.mark.parametrize("rtype", sorted(RESOURCES))
def test_reference_strings_match_iter_references(rtype: str) -> None:
    resource: dict[str, Any] = copy.deepcopy(RESOURCES[rtype])
    resource["contained"] = [{"resourceType": "Patient", "link": [{"other": {"reference": "Patient/in"}}]}]
    expected = list(iter_references(resource, rtype))
    assert reference_strings(resource) == [ref for _, ref in expected]
    for where, ref in expected:
        assert location_of(resource, ref) == next(w for w, r in expected if r == ref)
        assert where


@pytest.mark.parametrize("year", [999, 1000, 1970, 2024, 2025, 9999])
def test_day_bounds_shortcut_matches_the_datetime_formatting(year: int) -> None:
    from datetime import datetime

    from fhir_server.fhir.search import normalize

    for month in range(1, 13):
        for day in (1, 28, 29, 30, 31):
            text = f"{year:04d}-{month:02d}-{day:02d}"
            try:
                expected: tuple[str, str] | None = (
                    normalize._fmt(datetime(year, month, day)),
                    normalize._fmt(datetime(year, month, day, 23, 59, 59, 999000)))
            except ValueError:
                expected = None
            assert normalize.date_bounds(text) == expected, text
