"""Intake validation: JSON Schema + semantic rules → issues located by JSONPath."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from fhir_server.ascmi.schema import check_form, form_issues, revocation_issues
from fhir_server.fhir.outcome import FHIRError
from tests.ascmi.conftest import TODAY, example, example_names

FORM_REQUIRED = [
    "formType",
    "formVersion",
    "formId",
    "signedDate",
    "individual",
    "collector",
    "recipients",
    "purposes",
    "categories",
    "expiration",
    "signature",
    "acknowledgements",
]
NESTED_REQUIRED = [
    ("individual", "givenName"),
    ("individual", "familyName"),
    ("individual", "birthDate"),
    ("collector", "name"),
    ("collector", "identifiers"),
    ("collector", "type"),
    ("collector", "coveredEntity"),
    ("recipients", "allCarePartners"),
    ("signature", "signer"),
    ("signature", "method"),
    ("signature", "date"),
    ("acknowledgements", "rightToRevoke"),
    ("acknowledgements", "redisclosureNotice"),
    ("acknowledgements", "noConditioning"),
    ("acknowledgements", "copyReceived"),
]
REVOCATION_REQUIRED = ["revokes", "individual", "effectiveDate", "signedDate", "signature", "receivedBy"]


def paths(issues: list[Any]) -> list[str]:
    return [e for i in issues for e in i.expression]


def issues_of(form: dict[str, Any], terminology: Any) -> list[Any]:
    return form_issues(form, terminology=terminology, today=TODAY)


@pytest.mark.parametrize("name", example_names("form"))
def test_every_example_form_is_valid(name, terminology):
    assert issues_of(example(name), terminology) == []


@pytest.mark.parametrize("name", example_names("revocation"))
def test_every_example_revocation_is_valid(name, terminology):
    assert revocation_issues(example(name), terminology=terminology, today=TODAY) == []


@pytest.mark.parametrize("field", FORM_REQUIRED)
def test_a_missing_top_level_field_is_reported_at_its_path(field, terminology):
    form = example("non-ab133-mixed")
    del form[field]
    issues = issues_of(form, terminology)
    assert [(i.code, i.expression) for i in issues] == [("required", (f"$.{field}",))]


@pytest.mark.parametrize(("parent", "field"), NESTED_REQUIRED)
def test_a_missing_nested_field_is_reported_at_its_path(parent, field, terminology):
    form = example("non-ab133-mixed")
    del form[parent][field]
    issues = issues_of(form, terminology)
    assert (f"$.{parent}.{field}",) in [i.expression for i in issues]
    assert all(i.code == "required" for i in issues if i.expression == (f"$.{parent}.{field}",))


@pytest.mark.parametrize("field", REVOCATION_REQUIRED)
def test_a_missing_revocation_field_is_reported_at_its_path(field, terminology):
    revocation = example("revoke-by-form-id")
    del revocation[field]
    issues = revocation_issues(revocation, terminology=terminology, today=TODAY)
    assert [(i.code, i.expression) for i in issues] == [("required", (f"$.{field}",))]


WRONG_TYPES = [
    (["signedDate"], 20250314, "$.signedDate"),
    (["individual", "givenName"], ["Darnell"], "$.individual.givenName"),
    (["recipients", "allCarePartners"], "yes", "$.recipients.allCarePartners"),
    (["purposes"], "TREAT", "$.purposes"),
    (["categories"], ["general-health"], "$.categories"),
    (["collector", "coveredEntity"], "true", "$.collector.coveredEntity"),
    (["collector", "identifiers"], {"system": "x", "value": "y"}, "$.collector.identifiers"),
    (["acknowledgements", "copyReceived"], 1, "$.acknowledgements.copyReceived"),
]


@pytest.mark.parametrize(("path", "value", "where"), WRONG_TYPES)
def test_a_value_of_the_wrong_type_is_a_structure_issue_at_its_path(path, value, where, terminology):
    form = example("non-ab133-mixed")
    holder = form
    for key in path[:-1]:
        holder = holder[key]
    holder[path[-1]] = value
    issues = issues_of(form, terminology)
    assert [(i.code, i.expression) for i in issues] == [("structure", (where,))]


BAD_VALUES = [
    (["signedDate"], "2025-02-30", "value", "$.signedDate"),
    (["individual", "birthDate"], "03/05/1991", "value", "$.individual.birthDate"),
    (["formType"], "AB-133", "value", "$.formType"),
    (["collector", "type"], "hospital", "code-invalid", "$.collector.type"),
    (["collector", "state"], "California", "value", "$.collector.state"),
    (["individual", "mediCalId"], "12345", "value", "$.individual.mediCalId"),
    (["expiration", "event"], "death", "code-invalid", "$.expiration.event"),
    (["signature", "signer"], "witness", "value", "$.signature.signer"),
    (["categories", "hiv"], "maybe", "value", "$.categories.hiv"),
]


@pytest.mark.parametrize(("path", "value", "code", "where"), BAD_VALUES)
def test_a_value_outside_its_domain_is_reported_at_its_path(path, value, code, where, terminology):
    form = example("non-ab133-mixed")
    holder = form
    for key in path[:-1]:
        holder = holder[key]
    holder[path[-1]] = value
    issues = issues_of(form, terminology)
    assert [(i.code, i.expression) for i in issues] == [(code, (where,))]


def test_an_unknown_category_code_is_reported_at_the_category(terminology):
    form = example("non-ab133-mixed")
    form["categories"]["dental"] = "share"
    form["categories"]["mental-health-x"] = "share"
    issues = issues_of(form, terminology)
    assert {(i.code, i.expression) for i in issues} == {
        ("code-invalid", ("$.categories.dental",)),
        ("code-invalid", ("$.categories['mental-health-x']",)),
    }


def test_an_unknown_purpose_is_reported_at_its_index(terminology):
    form = example("non-ab133-mixed")
    form["purposes"] = ["TREAT", "MARKETING"]
    assert [(i.code, i.expression) for i in issues_of(form, terminology)] == [("code-invalid", ("$.purposes[1]",))]


def test_an_unknown_field_is_reported_where_it_is(terminology):
    form = example("non-ab133-mixed")
    form["individual"]["birthdate"] = "1991-06-05"
    assert [(i.code, i.expression) for i in issues_of(form, terminology)] == [
        ("structure", ("$.individual.birthdate",))
    ]


def test_an_included_care_partner_error_names_its_index(terminology):
    form = example("named-include-exclude")
    del form["recipients"]["include"][1]["identifiers"]
    assert paths(issues_of(form, terminology)) == ["$.recipients.include[1].identifiers"]


def _set(form: dict[str, Any], path: list[Any], value: Any) -> None:
    for key in path[:-1]:
        form = form[key]
    if value is _DELETE:
        del form[path[-1]]
    else:
        form[path[-1]] = value


_DELETE = object()
SEMANTIC = [
    (
        "an AB 133 form without a Medi-Cal id",
        "ab133-all-share",
        [(["individual", "mediCalId"], _DELETE)],
        "required",
        "$.individual.mediCalId",
    ),
    ("no expiration", "non-ab133-mixed", [(["expiration"], {})], "required", "$.expiration"),
    (
        "an expiration date before the signed date",
        "non-ab133-mixed",
        [(["expiration", "date"], "2025-03-13")],
        "business-rule",
        "$.expiration.date",
    ),
    (
        "a signed date in the future",
        "non-ab133-mixed",
        [(["signedDate"], "2025-06-03"), (["expiration", "date"], "2026-06-03")],
        "business-rule",
        "$.signedDate",
    ),
    (
        "a signature date in the future",
        "non-ab133-mixed",
        [(["signature", "date"], "2025-07-01")],
        "business-rule",
        "$.signature.date",
    ),
    (
        "a birth date after the signed date",
        "non-ab133-mixed",
        [(["individual", "birthDate"], "2025-04-01")],
        "business-rule",
        "$.individual.birthDate",
    ),
    (
        "a representative signature without a representative",
        "conservatorship",
        [(["signature", "representative"], _DELETE)],
        "required",
        "$.signature.representative",
    ),
    ("sharing without any purpose", "non-ab133-mixed", [(["purposes"], [])], "required", "$.purposes"),
    (
        "sharing with nobody named and not all Care Partners",
        "named-include-exclude",
        [(["recipients", "include"], [])],
        "required",
        "$.recipients.include",
    ),
    (
        "a minor signing for a category minors cannot consent to",
        "minor-15",
        [(["minorSignature", "categories"], ["mental-health", "hiv"])],
        "business-rule",
        "$.minorSignature.categories[1]",
    ),
    (
        "a minor signature by an adult",
        "conservatorship",
        [(["minorSignature"], {"date": "2025-05-06", "categories": ["mental-health"]})],
        "business-rule",
        "$.minorSignature",
    ),
    (
        "an authorization without the right-to-revoke statement",
        "non-ab133-mixed",
        [(["acknowledgements", "rightToRevoke"], False)],
        "business-rule",
        "$.acknowledgements.rightToRevoke",
    ),
    (
        "an attachment that is not base64",
        "with-attachment",
        [(["attachment", "data"], "JVBERi0=x==")],
        "value",
        "$.attachment.data",
    ),
    (
        "an attachment that is not the declared type",
        "with-attachment",
        [(["attachment", "data"], base64.b64encode(b"\x89PNG\r\n\x1a\n....").decode())],
        "value",
        "$.attachment.data",
    ),
]


@pytest.mark.parametrize(("rule", "name", "changes", "code", "where"), SEMANTIC, ids=[s[0] for s in SEMANTIC])
def test_each_semantic_rule_is_reported_at_the_field_it_concerns(rule, name, changes, code, where, terminology):
    form = example(name)
    for path, value in changes:
        _set(form, path, value)
    issues = issues_of(form, terminology)
    assert [(i.code, i.expression) for i in issues] == [(code, (where,))], rule


def test_a_care_partner_both_included_and_excluded_is_contradictory(terminology):
    form = example("named-include-exclude")
    form["recipients"]["exclude"].append(form["recipients"]["include"][1])
    assert [(i.code, i.expression) for i in issues_of(form, terminology)] == [
        ("business-rule", ("$.recipients.exclude[1]",))
    ]


REVOCATION_RULES = [
    ("effective after the day it is received", {"effectiveDate": "2025-06-03"}, "$.effectiveDate"),
    ("effective before it was signed", {"effectiveDate": "2025-05-29"}, "$.effectiveDate"),
    ("signed in the future", {"signedDate": "2025-06-05", "effectiveDate": "2025-06-02"}, "$.signedDate"),
]


@pytest.mark.parametrize(("rule", "changes", "where"), REVOCATION_RULES, ids=[r[0] for r in REVOCATION_RULES])
def test_each_revocation_date_rule_is_reported_at_its_field(rule, changes, where, terminology):
    revocation = example("revoke-by-form-id") | changes
    issues = revocation_issues(revocation, terminology=terminology, today=TODAY)
    assert where in paths(issues), rule
    assert all(i.code == "business-rule" for i in issues)


def test_a_revocation_effective_today_is_accepted(terminology):
    revocation = example("revoke-by-form-id") | {"effectiveDate": TODAY.isoformat()}
    assert revocation_issues(revocation, terminology=terminology, today=TODAY) == []


@pytest.mark.parametrize("revokes", [{}, {"formId": "A", "consent": "Consent/1"}, {"consent": "Patient/1"}])
def test_a_revocation_must_name_exactly_one_form_or_consent(revokes, terminology):
    revocation = example("revoke-by-form-id") | {"revokes": revokes}
    issues = revocation_issues(revocation, terminology=terminology, today=TODAY)
    assert issues and all(p.startswith("$.revokes") for p in paths(issues))


def test_check_form_raises_a_422_carrying_every_issue(terminology):
    form = example("ab133-all-share")
    del form["individual"]["mediCalId"]
    form["categories"]["bogus"] = "share"
    with pytest.raises(FHIRError) as caught:
        check_form(form, terminology=terminology, today=TODAY)
    assert caught.value.status == 422
    outcome = caught.value.outcome()
    assert [i["expression"] for i in outcome["issue"]] == [["$.categories.bogus"], ["$.individual.mediCalId"]]
    assert outcome["issue"][0]["code"] == "code-invalid"


def test_a_body_that_is_not_an_object_is_one_structure_issue(terminology):
    assert [(i.code, i.expression) for i in issues_of([], terminology)] == [("structure", ("$",))]
