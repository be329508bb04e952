"""Bundle entries and the references between them (bundle.html, references.html#bundle-references)."""

from __future__ import annotations

from typing import Any

from fhir_server.fhir.validation import DefinitionSource, Validator, check

VALIDATOR = Validator(DefinitionSource())
PATIENT_URL = "http://example.org/fhir/Patient/1"


def bundle(btype: str, *entries: dict[str, Any], **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"resourceType": "Bundle", "type": btype, **extra}
    if entries:  # "entry": [] is itself an error (an empty JSON array)
        body["entry"] = list(entries)
    return body


def issues(resource: dict[str, Any], severity: str = "error") -> list[tuple[str, str]]:
    return [(i.expression[0] if i.expression else "", i.diagnostics)
            for i in check.validate(VALIDATOR, resource) if i.severity == severity]


def document(*refs: str) -> dict[str, Any]:
    composition = {"resourceType": "Composition", "status": "final", "type": {"text": "note"}, "date": "2024-01-01",
                   "title": "Note", "subject": {"reference": refs[0]},
                   "author": [{"reference": r} for r in refs[1:]] or [{"display": "me"}]}
    return bundle("document",
                  {"fullUrl": "http://example.org/fhir/Composition/c", "resource": {**composition, "id": "c"}},
                  {"fullUrl": PATIENT_URL, "resource": {"resourceType": "Patient", "id": "1"}},
                  identifier={"system": "urn:ietf:rfc:3986", "value": "urn:uuid:4f6a3c1e-2b7d-4e8a-9c3f-1a2b3c4d5e6f"},
                  timestamp="2024-01-01T00:00:00Z")


def test_a_document_carries_what_its_composition_refers_to() -> None:
    assert [d for _, d in issues(document("Patient/1"))] == []
    assert issues(document("Patient/1", "Organization/666")) == [
        ("Bundle.entry[0].resource.author[0].reference", "Can't find 'Organization/666' in the bundle "
         "(Composition.author)")]


def test_a_relative_reference_resolves_against_the_entry_base() -> None:
    assert issues(document(PATIENT_URL)) == []
    assert [d for _, d in issues(document("http://other.org/fhir/Patient/1"))] == [
        "Can't find 'http://other.org/fhir/Patient/1' in the bundle (Composition.subject)",
        f"Entry '{PATIENT_URL}' isn't reachable by traversing links (forward or backward) from the Composition"]


def test_a_urn_reference_no_entry_carries_is_a_warning() -> None:
    missing = "urn:uuid:4f6a3c1e-2b7d-4e8a-9c3f-1a2b3c4d5e61"
    b = bundle("collection", {"fullUrl": "urn:uuid:4f6a3c1e-2b7d-4e8a-9c3f-1a2b3c4d5e60", "resource": {
        "resourceType": "Patient", "managingOrganization": {"reference": missing}}})
    assert issues(b) == []
    assert [p for p, d in issues(b, "warning") if "URN reference" in d] == [
        "Bundle.entry[0].resource.managingOrganization"]


def test_a_collection_may_refer_outside_itself() -> None:
    b = bundle("collection", {"fullUrl": PATIENT_URL, "resource": {
        "resourceType": "Patient", "id": "1", "managingOrganization": {"reference": "Organization/666"}}})
    assert issues(b) == []


def test_the_full_url_names_the_entry_resource() -> None:
    b = bundle("collection", {"fullUrl": PATIENT_URL, "resource": {"resourceType": "Patient", "id": "2"}})
    assert issues(b) == [("Bundle.entry[0]", f"The fullUrl '{PATIENT_URL}' looks like a RESTful server URL, so it "
                                             "must end with the correct type and id (/Patient/2)")]


def test_the_full_url_is_absolute() -> None:
    b = bundle("collection", {"fullUrl": "Patient/1", "resource": {"resourceType": "Patient", "id": "1"}})
    assert ("Bundle.entry[0]", "The fullUrl must be an absolute URL (not 'Patient/1')") in issues(b)


def test_a_transaction_entry_needs_its_request() -> None:
    b = bundle("transaction", {"fullUrl": "urn:uuid:4f6a3c1e-2b7d-4e8a-9c3f-1a2b3c4d5e60",
                               "resource": {"resourceType": "Patient"}})
    assert any("bdl-3" in d for _, d in issues(b))


def test_every_entry_of_a_document_is_reachable_from_the_composition() -> None:
    doc = document("Patient/1")
    doc["entry"].append({"fullUrl": "http://example.org/fhir/Organization/9",
                         "resource": {"resourceType": "Organization", "id": "9", "name": "Clinic"}})
    assert [p for p, d in issues(doc) if "reachable" in d] == ["Bundle.entry[2]"]
    doc["entry"][1]["resource"]["managingOrganization"] = {"reference": "Organization/9"}
    assert issues(doc) == []


def test_a_provenance_pointing_into_a_document_is_reached_backwards() -> None:
    doc = document("Patient/1")
    doc["entry"].append({"fullUrl": "http://example.org/fhir/Provenance/p", "resource": {
        "resourceType": "Provenance", "id": "p", "recorded": "2024-01-01T00:00:00Z",
        "target": [{"reference": "Composition/c"}], "agent": [{"who": {"display": "me"}}]}})
    assert issues(doc) == []


def test_entries_other_than_transactions_need_a_full_url() -> None:
    b = bundle("collection", {"resource": {"resourceType": "Patient"}})
    assert [p for p, d in issues(b) if "must have a fullUrl" in d] == ["Bundle.entry[0]"]
    b["type"] = "batch"
    b["entry"][0]["request"] = {"method": "POST", "url": "Patient"}
    assert [p for p, d in issues(b) if "must have a fullUrl" in d] == []


def test_paging_links_belong_to_search_results() -> None:
    b = bundle("collection", link=[{"relation": "next", "url": "http://example.org/fhir/Patient?page=2"}])
    assert [p for p, _ in issues(b)] == ["Bundle.link[0].relation"]
    b["type"] = "searchset"
    assert issues(b) == []


def test_search_matches_have_ids_and_the_searched_type() -> None:
    b = bundle("searchset", {"fullUrl": "http://example.org/fhir/Observation/1", "search": {"mode": "match"},
                             "resource": {"resourceType": "Observation", "id": "1", "status": "final",
                                          "code": {"text": "x"}}},
               link=[{"relation": "self", "url": "http://example.org/fhir/Patient?name=x"}])
    assert [d for _, d in issues(b)] == [
        "This is not a matching resource type for the specified search (Observation expecting ['Patient'])"]


def test_a_relative_reference_does_not_resolve_by_type_and_id_across_bases() -> None:
    """references.html#bundle-references: Patient/1 read from an urn:uuid entry has no base to resolve against,
    so the Patient with id 1 in the document is only an apparent match (an error, as the HL7 validator has it)."""
    doc = bundle("document",
                 {"fullUrl": "urn:uuid:4f6a3c1e-2b7d-4e8a-9c3f-1a2b3c4d5e70", "resource": {
                     "resourceType": "Composition", "status": "final", "type": {"text": "note"}, "date": "2024-01-01",
                     "title": "Note", "author": [{"display": "me"}], "subject": {"reference": "Patient/1"}}},
                 {"fullUrl": "urn:uuid:4f6a3c1e-2b7d-4e8a-9c3f-1a2b3c4d5e71",
                  "resource": {"resourceType": "Patient", "id": "1"}},
                 identifier={"system": "urn:ietf:rfc:3986", "value": "urn:uuid:4f6a3c1e-2b7d-4e8a-9c3f-1a2b3c4d5e72"},
                 timestamp="2024-01-01T00:00:00Z")
    found = issues(doc)
    assert [p for p, _ in found] == ["Bundle.entry[0].resource.subject.reference", "Bundle.entry[1]"]
    assert "urn:uuid:4f6a3c1e-2b7d-4e8a-9c3f-1a2b3c4d5e71" in found[0][1]
    doc["entry"][0]["resource"]["subject"]["reference"] = "urn:uuid:4f6a3c1e-2b7d-4e8a-9c3f-1a2b3c4d5e71"
    assert issues(doc) == []


def test_a_document_may_point_at_definitions_it_does_not_carry() -> None:
    doc = document("Patient/1")
    doc["entry"][0]["resource"]["section"] = [{"title": "Form", "entry": [
        {"reference": "http://example.org/fhir/Questionnaire/intake"}]}]
    assert issues(doc) == []
    doc["entry"][0]["resource"]["section"][0]["entry"][0]["reference"] = "http://example.org/fhir/Observation/9"
    assert [d for _, d in issues(doc)] == [
        "Can't find 'http://example.org/fhir/Observation/9' in the bundle (Section Entry)"]


def test_a_reference_that_resolves_to_another_type_is_an_error() -> None:
    b = bundle("collection",
               {"fullUrl": PATIENT_URL, "resource": {"resourceType": "Patient", "id": "1",
                                                     "generalPractitioner": [{"reference": "Practitioner/5"}]}},
               {"fullUrl": "http://example.org/fhir/Practitioner/5",
                "resource": {"resourceType": "Organization", "id": "5", "name": "Clinic"}})
    found = issues(b)
    assert ("Bundle.entry[0].resource.generalPractitioner[0]",
            "Matching reference for reference Practitioner/5 has resourceType Organization") in found
