"""The Mongo filter compiler as plain data: no database (Spark style)."""

from __future__ import annotations

import re

import pytest

from fhir_server.fhir.search.ast import SortKey
from fhir_server.fhir.search.index import IndexRows
from fhir_server.fhir.search.normalize import uri_ancestors
from fhir_server.fhir.search.parse import parse_search
from fhir_server.store.mongo.documents import index_document, sort_document
from fhir_server.store.mongo.filters import compile_filter, compile_query
from fhir_server.store.mongo.paging import after, decode_cursor, encode_cursor, sort_spec


def compiled(rtype: str, query: str) -> dict[str, object]:
    name, _, value = query.partition("=")
    return compile_filter(parse_search(rtype, [(name, value)]).filters[0], {})


@pytest.mark.parametrize(("rtype", "query", "expected"), [
    ("Consent", "status=active", {"_ix.token": {"$elemMatch": {"p": "status", "c": "active"}}}),
    ("Consent", "category=http://loinc.org|59284-0",
     {"_ix.token": {"$elemMatch": {"p": "category", "s": "http://loinc.org", "c": "59284-0"}}}),
    ("Consent", "category=|x", {"_ix.token": {"$elemMatch": {"p": "category", "s": None, "c": "x"}}}),
    ("Consent", "category=http://loinc.org|", {"_ix.token": {"$elemMatch": {"p": "category", "s": "http://loinc.org"}}}),
    ("Consent", "status:not=active", {"$nor": [{"_ix.token": {"$elemMatch": {"p": "status", "c": "active"}}}]}),
    ("Consent", "status=a,b", {"$or": [{"_ix.token": {"$elemMatch": {"p": "status", "c": "a"}}},
                                       {"_ix.token": {"$elemMatch": {"p": "status", "c": "b"}}}]}),
    ("Consent", "patient=Patient/1",
     {"_ix.reference": {"$elemMatch": {"p": "patient", "i": "1", "t": "Patient"}}}),
    ("Consent", "status:missing=true", {"_ix.token.p": {"$ne": "status"}}),
    ("Consent", "status:missing=false", {"_ix.token.p": "status"}),
    ("Patient", "name=Mü", {"_ix.string": {"$elemMatch": {"p": "name", "v": {"$regex": "^mu"}}}}),
    ("Patient", "name:exact=Mü", {"_ix.string": {"$elemMatch": {"p": "name", "e": "Mü"}}}),
    ("Patient", "name:contains=a.*b", {"_ix.string": {"$elemMatch": {"p": "name", "v": {"$regex": r"a\.\*b"}}}}),
    ("Patient", "birthdate=ge2000",
     {"_ix.date": {"$elemMatch": {"p": "birthdate", "hi": {"$gte": "2000-01-01T00:00:00.000Z"}}}}),
    ("Patient", "birthdate=2000", {"_ix.date": {"$elemMatch": {
        "p": "birthdate", "lo": {"$gte": "2000-01-01T00:00:00.000Z"}, "hi": {"$lte": "2000-12-31T23:59:59.999Z"}}}}),
    ("Patient", "_id=a,b", {"_rid": {"$in": ["a", "b"]}}),
    ("Patient", "_lastUpdated=gt2026-01-01", {"_lu": {"$gt": "2026-01-01T23:59:59.999Z"}}),
    ("Patient", "_lastUpdated=2026", {"_lu": {"$gte": "2026-01-01T00:00:00.000Z",
                                              "$lte": "2026-12-31T23:59:59.999Z"}}),
])
def test_filters_compile_to_elem_match_on_the_fixed_index_arrays(rtype: str, query: str, expected: object) -> None:
    assert compiled(rtype, query) == expected


def test_user_text_in_a_prefix_search_is_escaped() -> None:
    f = compiled("Patient", "name=(a|b)$")
    pattern = f["_ix.string"]["$elemMatch"]["v"]["$regex"]  # type: ignore[index]
    assert re.match(pattern, "(a|b)$ and more") and not re.match(pattern, "a")


def test_date_ne_is_the_negation_of_containment() -> None:
    assert compiled("Patient", "birthdate=ne2000")["_ix.date"]["$elemMatch"]["$or"] == [  # type: ignore[index]
        {"lo": {"$lt": "2000-01-01T00:00:00.000Z"}}, {"hi": {"$gt": "2000-12-31T23:59:59.999Z"}}]


def test_composite_components_must_match_in_one_array_element() -> None:
    f = compiled("Observation", "code-value-quantity=http://loinc.org|8867-4$gt90")
    match = f["_ix.composite"]["$elemMatch"]  # type: ignore[index]
    assert match["p"] == "code-value-quantity"
    assert match["$and"][0] == {"c0.s": "http://loinc.org", "c0.c": "8867-4"}
    assert match["$and"][1] == {"c1.hi": {"$gt": 90.5}}


def test_chains_use_the_ids_their_sub_query_found() -> None:
    f = parse_search("Consent", [("patient.gender", "male")]).filters[0]
    assert compile_filter(f, {f: [("Patient", "2"), ("Patient", "1")]}) == {
        "_ix.reference": {"$elemMatch": {"p": "patient", "t": "Patient", "i": {"$in": ["1", "2"]}}}}
    assert compile_filter(f, {}) == {"_id": {"$in": []}}


def test_a_query_is_type_and_live_and_every_filter() -> None:
    q = parse_search("Consent", [("status", "active"), ("_id", "1")])
    assert compile_query(q, {}) == {"_del": False, "_type": "Consent", "$and": [
        {"_ix.token": {"$elemMatch": {"p": "status", "c": "active"}}}, {"_rid": {"$in": ["1"]}}]}


def test_index_document_has_every_type_as_an_array_whatever_the_cardinality() -> None:
    doc = index_document(IndexRows(token=[("status", None, "active", None)],
                                   composite=[("cvq", 0, 0, "token", ("s", "c", None)),
                                              ("cvq", 0, 1, "quantity", ("u", "/min", None, 1.0, 2.0))]))
    assert set(doc) == {"string", "token", "reference", "date", "number", "quantity", "uri", "composite"}
    assert doc["string"] == [] and doc["token"] == [{"p": "status", "s": None, "c": "active", "d": None}]
    assert doc["composite"] == [{"p": "cvq", "g": 0, "c0": {"s": "s", "c": "c", "d": None},
                                 "c1": {"s": "u", "c": "/min", "u": None, "lo": 1.0, "hi": 2.0}}]


def test_sort_values_are_the_lowest_ascending_and_highest_descending() -> None:
    asc, desc = sort_document(IndexRows(date=[("date", "2020", "2020z"), ("date", "2019", "2019z")]))
    assert asc == {"date": "2019"} and desc == {"date": "2020z"}


def test_keyset_after_puts_missing_values_where_mongodb_sorts_them() -> None:
    spec, computed = sort_spec((SortKey("date", "date", descending=True),))
    assert spec == [("_k0", -1), ("_id", 1)] and computed == {"_k0": {"$ifNull": ["$_sd.date", ""]}}
    assert after(spec, ["2020", "Consent/1"]) == {"$or": [
        {"_k0": {"$lt": "2020"}}, {"_k0": None}, {"$and": [{"_k0": "2020"}, {"_id": {"$gt": "Consent/1"}}]}]}
    assert decode_cursor(encode_cursor(["2020", "Consent/1"]), spec) == ["2020", "Consent/1"]


def test_uri_above_lists_the_ancestors() -> None:
    assert uri_ancestors("http://a.org/fhir/ValueSet/x") == [
        "http://a.org/fhir/ValueSet/x", "http://a.org/fhir/ValueSet", "http://a.org/fhir", "http://a.org"]
