"""The search parser: query pairs → AST, no database."""

from __future__ import annotations

import pytest

from fhir_server.fhir.outcome import InvalidSearchParameter
from fhir_server.fhir.search.ast import (
    NO_SYSTEM,
    CompositeValue,
    DateValue,
    Filter,
    Has,
    Include,
    NumberValue,
    QuantityValue,
    ReferenceValue,
    SortKey,
    StringValue,
    TokenValue,
    UriValue,
)
from fhir_server.fhir.search.parse import parse_search


def only_filter(rtype: str, name: str, value: str) -> Filter | Has:
    q = parse_search(rtype, [(name, value)])
    assert len(q.filters) == 1
    return q.filters[0]


VALUES = [
    ("Patient", "birthdate", "ge2000", (DateValue("ge", "2000-01-01T00:00:00.000Z", "2000-12-31T23:59:59.999Z"),)),
    ("Patient", "birthdate", "2000-02", (DateValue("eq", "2000-02-01T00:00:00.000Z", "2000-02-29T23:59:59.999Z"),)),
    ("Consent", "date", "2025-03-04T10:00:00+02:00",
     (DateValue("eq", "2025-03-04T08:00:00.000Z", "2025-03-04T08:00:00.999Z"),)),
    ("Consent", "date", "2025-03-04T10:00", (DateValue("eq", "2025-03-04T10:00:00.000Z", "2025-03-04T10:00:59.999Z"),)),
    ("RiskAssessment", "probability", "gt0.5", (NumberValue("gt", 0.45, 0.55, 0.5),)),
    ("RiskAssessment", "probability", "1e2", (NumberValue("eq", 50.0, 150.0, 100.0),)),
    ("Observation", "value-quantity", "5.4|http://unitsofmeasure.org|mg",
     (QuantityValue("eq", 5.35, 5.45, 5.4, "http://unitsofmeasure.org", "mg"),)),
    ("Observation", "value-quantity", "le5.4||mg", (QuantityValue("le", 5.35, 5.45, 5.4, None, "mg"),)),
    ("Consent", "status", "active,draft", (TokenValue(None, "active"), TokenValue(None, "draft"))),
    ("Patient", "identifier", "urn:mrn|123", (TokenValue("urn:mrn", "123"),)),
    ("Patient", "identifier", "|123", (TokenValue(NO_SYSTEM, "123"),)),
    ("Patient", "identifier", "urn:mrn|", (TokenValue("urn:mrn", None),)),
    ("Patient", "identifier", "a\\,b", (TokenValue(None, "a,b"),)),
    ("Patient", "identifier", "urn:x|a\\|b", (TokenValue("urn:x", "a|b"),)),
    ("Patient", "name", "Müller", (StringValue("Müller", "muller"),)),
    ("Patient", "name", "50%_off' OR 1=1 --", (StringValue("50%_off' OR 1=1 --", "50%_off' or 1=1 --"),)),
    ("Consent", "patient", "Patient/1", (ReferenceValue("Patient", "1"),)),
    ("Consent", "patient", "1", (ReferenceValue("Patient", "1"),)),
    ("Consent", "patient", "http://x.org/fhir/Patient/1/_history/3",
     (ReferenceValue("Patient", "1", "http://x.org/fhir/Patient/1"),)),
    ("Patient", "_profile", "http://example.org/p", (UriValue("http://example.org/p"),)),
    ("Observation", "code-value-quantity", "http://loinc.org|8867-4$gt60",
     (CompositeValue((TokenValue("http://loinc.org", "8867-4"), QuantityValue("gt", 59.5, 60.5, 60.0))),)),
]


@pytest.mark.parametrize(("rtype", "name", "value", "expected"), VALUES)
def test_values_parse_by_parameter_type(rtype: str, name: str, value: str, expected: tuple[object, ...]) -> None:
    f = only_filter(rtype, name, value)
    assert isinstance(f, Filter)
    assert f.values == expected


MODIFIERS = [
    ("Patient", "name:exact", "Jo", "exact"),
    ("Patient", "name:contains", "o", "contains"),
    ("Consent", "status:not", "active", "not"),
    ("Consent", "category:text", "privacy", "text"),
    ("Consent", "purpose:in", "http://vs", "in"),
    ("Consent", "purpose:not-in", "http://vs", "not-in"),
    ("Consent", "purpose:below", "http://cs|TREAT", "below"),
    ("Consent", "purpose:above", "http://cs|TREAT", "above"),
    ("Consent", "patient:identifier", "urn:mrn|1", "identifier"),
    ("Patient", "_profile:below", "http://example.org/", "below"),
]


@pytest.mark.parametrize(("rtype", "name", "value", "modifier"), MODIFIERS)
def test_modifiers_are_recorded_on_the_filter(rtype: str, name: str, value: str, modifier: str) -> None:
    f = only_filter(rtype, name, value)
    assert isinstance(f, Filter) and f.modifier == modifier


def test_missing_modifier_takes_a_boolean() -> None:
    f = only_filter("Patient", "birthdate:missing", "true")
    assert isinstance(f, Filter) and f.missing is True


def test_reference_type_modifier_sets_the_target_type() -> None:
    f = only_filter("Observation", "subject:Patient", "1")
    assert isinstance(f, Filter) and f.target_type == "Patient" and f.values == (ReferenceValue("Patient", "1"),)


def test_repeated_parameters_are_anded_and_commas_are_ored() -> None:
    q = parse_search("Patient", [("birthdate", "ge2000"), ("birthdate", "lt2010"), ("gender", "male,female")])
    assert len(q.filters) == 3
    assert len(q.filters[2].values) == 2  # type: ignore[union-attr]


def test_multi_level_chain_nests_filters_on_target_types() -> None:
    f = only_filter("Consent", "patient.organization.name", "acme")
    assert isinstance(f, Filter) and f.chain_types == ("Patient",)
    inner = f.chain
    assert isinstance(inner, Filter) and inner.name == "organization" and inner.chain_types == ("Organization",)
    assert inner.chain == Filter("name", "string", (StringValue("acme", "acme"),), resource_type="Organization")


def test_has_parses_source_type_reference_and_inner_filter() -> None:
    h = only_filter("Patient", "_has:Observation:patient:code", "1234")
    assert h == Has("Observation", "patient", Filter("code", "token", (TokenValue(None, "1234"),),
                                                     resource_type="Observation"))


def test_nested_has_is_supported() -> None:
    h = only_filter("Patient", "_has:Observation:patient:_has:AuditEvent:entity:type", "110106")
    assert isinstance(h, Has) and isinstance(h.inner, Has) and h.inner.source_type == "AuditEvent"


def test_includes_and_revincludes_with_iterate_and_wildcard() -> None:
    q = parse_search("Consent", [("_include", "Consent:patient"), ("_include:iterate", "Patient:organization"),
                                 ("_revinclude", "Provenance:target:Consent"), ("_include", "*")])
    assert q.includes == (Include("Consent", "patient"), Include("Patient", "organization", iterate=True),
                          Include(None, None))
    assert q.revincludes == (Include("Provenance", "target", "Consent"),)


def test_sort_with_several_keys_and_descending() -> None:
    q = parse_search("Patient", [("_sort", "-birthdate,name,_lastUpdated")])
    assert q.sort == (SortKey("birthdate", "date", True), SortKey("name", "string"),
                      SortKey("_lastUpdated", "special"))


CONTROL = [
    ([("_count", "5")], "count", 5),
    ([], "count", 20),
    ([("_total", "none")], "total", "none"),
    ([], "total", "accurate"),
    ([("_summary", "count")], "summary", "count"),
    ([("_elements", "id,status")], "elements", ("id", "status")),
    ([("_cursor", "abc")], "cursor", "abc"),
]


@pytest.mark.parametrize(("pairs", "attr", "expected"), CONTROL)
def test_result_parameters_set_query_options(pairs: list[tuple[str, str]], attr: str, expected: object) -> None:
    assert getattr(parse_search("Consent", pairs), attr) == expected


def test_count_over_the_maximum_is_capped_with_a_warning() -> None:
    q = parse_search("Consent", [("_count", "5000")])
    assert q.count == 1000
    assert q.warnings[0].severity == "warning" and "capped" in q.warnings[0].diagnostics
    assert q.self_link_query() == "_count=1000"


def test_format_and_pretty_are_ignored_and_left_out_of_the_self_link() -> None:
    q = parse_search("Consent", [("_format", "json"), ("_pretty", "true"), ("status", "active")])
    assert q.self_link_query() == "status=active"


def test_self_link_encodes_reserved_characters_and_omits_the_cursor() -> None:
    q = parse_search("Patient", [("name", "a&b=c d"), ("_cursor", "xyz")])
    assert q.self_link_query() == "name=a%26b%3Dc%20d"
    assert q.next_link_query("N") == "name=a%26b%3Dc%20d&_cursor=N"


def test_system_search_with_type_accepts_common_parameters() -> None:
    q = parse_search(None, [("_type", "Patient,Consent"), ("_id", "a"), ("_tag", "x|y")])
    assert q.types == ("Patient", "Consent") and len(q.filters) == 2
    assert q.self_link_query() == "_type=Patient,Consent&_id=a&_tag=x|y"


UNSUPPORTED = [
    ("Patient", "nope", "1", "not-supported"),
    ("Patient", "birthdate:exact", "2000", "invalid"),
    ("Patient", "name:frobnicate", "x", "invalid"),
    ("Patient", "_text", "x", "not-supported"),
    ("Consent", "_include", "Consent:status", "not-supported"),
    ("Consent", "_sort", "nope", "not-supported"),
]


@pytest.mark.parametrize(("rtype", "name", "value", "code"), UNSUPPORTED)
def test_strict_handling_rejects_unsupported_parameters(rtype: str, name: str, value: str, code: str) -> None:
    with pytest.raises(InvalidSearchParameter) as err:
        parse_search(rtype, [(name, value)], strict=True)
    assert err.value.status == 400 and err.value.code == code


@pytest.mark.parametrize(("rtype", "name", "value", "code"), UNSUPPORTED)
def test_lenient_handling_drops_them_from_the_query_and_the_self_link(rtype: str, name: str, value: str,
                                                                        code: str) -> None:
    q = parse_search(rtype, [(name, value), ("_id", "x")], strict=False)
    assert q.self_link_query() == "_id=x"
    assert q.warnings and q.warnings[0].code == code


BAD_VALUES = [
    ("Patient", "birthdate", "2000-13", "not a valid date"),
    ("Patient", "birthdate", "xx2000", "unknown prefix 'xx'"),
    ("Patient", "birthdate", "yesterday", "not a valid date"),
    ("RiskAssessment", "probability", "abc", "not a number"),
    ("Observation", "value-quantity", "1|2", "not a quantity"),
    ("Patient", "identifier", "a|b|c", "more than one unescaped"),
    ("Patient", "gender.name", "x", "cannot be chained"),
    ("Consent", "patient.nope", "x", "no target type"),
    ("Patient", "active:missing", "maybe", ":missing takes true or false"),
    ("Consent", "_count", "-1", "non-negative integer"),
    ("Consent", "_total", "some", "_total must be one of"),
    ("Patient", "_has:Nope:patient:code", "1", "not an R4 resource type"),
    ("Patient", "_has:Observation:code:code", "1", "not a reference parameter"),
    ("Patient", "_has:Observation", "1", "not a _has parameter"),
    ("Observation", "code-value-quantity", "8867-4", "needs 2"),
    ("Consent", "patient", "not a reference!", "not a reference"),
    ("Consent", "status", "a,,b", "empty value"),
    ("Consent", "_include", "Consent", "expected SourceType:param"),
]


@pytest.mark.parametrize(("rtype", "name", "value", "message"), BAD_VALUES)
@pytest.mark.parametrize("strict", [True, False])
def test_bad_values_are_precise_errors_in_both_handlings(rtype: str, name: str, value: str, message: str,
                                                          strict: bool) -> None:
    with pytest.raises(InvalidSearchParameter) as err:
        parse_search(rtype, [(name, value)], strict=strict)
    assert message in err.value.diagnostics
    assert err.value.status == 400 and err.value.code in ("invalid", "not-supported")


def test_unknown_resource_type_is_rejected() -> None:
    with pytest.raises(InvalidSearchParameter):
        parse_search("Nope", [])
