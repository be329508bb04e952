"""Narrative xhtml, local references and empty values, as the HL7 validator reports them (issue #20).

narrative.html#xhtml: the div is xhtml in its namespace with only basic formatting elements and attributes;
references.html#contained: ``#id`` resolves to a contained resource, ``#`` (from a contained resource) to the
container; json.html: an empty array or an empty string is not a value."""

from __future__ import annotations

from typing import Any

import pytest

from fhir_server.fhir.validation import Validator, check

VALIDATOR = Validator()
LIST = {"resourceType": "List", "status": "current", "mode": "working"}


def errors(resource: dict[str, Any]) -> list[tuple[str, str]]:
    return [(i.expression[0] if i.expression else "", i.diagnostics)
            for i in check.validate(VALIDATOR, resource) if i.severity == "error"]


def narrative(div: str) -> dict[str, Any]:
    return {**LIST, "text": {"status": "generated", "div": div}}


NS = 'xmlns="http://www.w3.org/1999/xhtml"'


@pytest.mark.parametrize("div", [
    f"<div {NS}><p>Hello <b>world</b></p></div>",
    f'<div {NS}><table><tr><td style="color: red" colspan="2">x</td></tr></table><a href="http://x.org">l</a></div>',
    f'<div {NS} xml:lang="en" lang="en"><img src="#a" alt="a"/></div>',
])
def test_allowed_narratives_pass(div: str) -> None:
    assert errors(narrative(div)) == []


@pytest.mark.parametrize(("div", "named"), [
    (f'<div {NS}><p onClick="alert(1)">x</p></div>', ["'onClick' on 'p'"]),
    (f'<div {NS}><object value="x">x</object></div>', ["('object')", "'value' on 'object'"]),
    (f"<div {NS}><p>x</p><script>alert(1)</script></div>", ["('script')"]),
])
def test_each_illegal_name_is_reported_beside_txt_1(div: str, named: list[str]) -> None:
    found = errors(narrative(div))
    assert all(where == "List.text.div" for where, _ in found)
    assert sum("txt-1" in d for _, d in found) == 1
    assert [n for n in named if any(n in d for _, d in found)] == named
    assert len(found) == 1 + len(named)


@pytest.mark.parametrize("div", ['<div xmlns="http://www.w3.org/1999/xhtmlx"><p>x</p></div>', "<div><p>x</p></div>"])
def test_a_wrong_or_missing_namespace_is_one_error(div: str) -> None:
    [(where, text)] = errors(narrative(div))
    assert where == "List.text.div" and "namespace" in text


def test_a_doctype_is_refused_without_expanding_it() -> None:
    div = f'<!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]><div {NS}>&x;</div>'
    found = errors(narrative(div))
    assert any("DOCTYPE" in d for _, d in found) and not any("root:" in d for _, d in found)


def test_malformed_xhtml_is_a_parse_error() -> None:
    found = errors(narrative(f"<div {NS}><p>x</pa></div>"))
    assert any("Error parsing XHTML" in d for _, d in found)


def test_a_local_reference_to_a_missing_contained_resource() -> None:
    resource = {**LIST, "contained": [{"resourceType": "Patient", "id": "pat2"}], "subject": {"reference": "#pat"}}
    found = errors(resource)
    assert sorted(w for w, _ in found) == ["List", "List.subject", "List.subject"]  # dom-3, ref-1, unresolved


def test_references_between_contained_resources_and_to_the_container() -> None:
    resource = {**LIST, "id": "l1", "contained": [
        {"resourceType": "Patient", "id": "pat", "managingOrganization": {"reference": "#org"}},
        {"resourceType": "Organization", "id": "org", "name": "o"},
        {"resourceType": "Provenance", "id": "prov", "target": [{"reference": "#"}], "recorded": "2020-01-01T00:00:00Z",
         "agent": [{"who": {"display": "x"}}]}], "subject": {"reference": "#pat"}}
    assert errors(resource) == []


def test_an_empty_array_is_an_error() -> None:
    assert [w for w, _ in errors({**LIST, "entry": []})] == ["List.entry"]


def test_an_empty_string_is_reported_with_ele_1() -> None:
    found = errors({"resourceType": "Parameters", "parameter": [{"name": "a", "valueString": ""}]})
    assert [w for w, _ in found] == ["Parameters.parameter[0].valueString"] * 2
    assert any("ele-1" in d for _, d in found)
