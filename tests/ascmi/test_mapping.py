"""form_to_bundle: the transaction a form becomes (ASCMI.md §3, §5 "Provisions written by the mapping")."""

from __future__ import annotations

import importlib.util
import json
from datetime import date
from typing import Any

import pytest
from fhir.resources.R4B import get_fhir_model_class

from fhir_server.ascmi.bundle import sequential_ids
from fhir_server.ascmi.mapping import form_to_bundle, produced_consent_index
from fhir_server.ascmi.stored import KnownPartner, Stored
from tests.ascmi.conftest import FORMS, NOW, ROOT, example, example_names

BASE = "https://ascmi.example.org/fhir"
V3 = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
NETWORK = "Organization/ascmi-care-partner-network"
IRCP = {
    "coding": [
        {
            "system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
            "code": "IRCP",
            "display": "information recipient",
        }
    ]
}


def _generator():
    spec = importlib.util.spec_from_file_location("gen", ROOT / "examples" / "generate_ascmi_bundles.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def bundle_of(name: str, **kw: Any) -> dict[str, Any]:
    return form_to_bundle(example(name), now=NOW, new_id=sequential_ids(name), **kw)


def resources(bundle: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == kind]


def consent_of(bundle: dict[str, Any]) -> dict[str, Any]:
    return bundle["entry"][produced_consent_index(bundle)]["resource"]


def full_url(bundle: dict[str, Any], resource: dict[str, Any]) -> str:
    return next(e["fullUrl"] for e in bundle["entry"] if e["resource"] is resource)


def codes(items: list[dict[str, Any]]) -> list[str]:
    return [c["code"] for c in items]


@pytest.mark.parametrize("name", example_names("form") + example_names("revocation"))
def test_the_example_bundles_regenerate_identically(name):
    generator = _generator()
    expected = (FORMS / f"{name}.bundle.json").read_text(encoding="utf-8")
    assert generator.render(generator.build(name)) == expected


@pytest.mark.parametrize("name", example_names("form"))
def test_every_entry_validates_with_fhir_resources_r4b(name):
    bundle = bundle_of(name)
    get_fhir_model_class("Bundle").model_validate(bundle)
    for entry in bundle["entry"]:
        get_fhir_model_class(entry["resource"]["resourceType"]).model_validate(entry["resource"])


@pytest.mark.parametrize("name", example_names("form"))
def test_new_resources_have_urn_uuid_full_urls_and_references_stay_inside_the_bundle(name):
    bundle = bundle_of(name)
    assert bundle["type"] == "transaction"
    urls = {e["fullUrl"] for e in bundle["entry"]}
    assert all(u.startswith("urn:uuid:") and len(u) == 45 for u in urls)
    assert all(
        e["request"]["method"] == "POST" and e["request"]["url"] == e["resource"]["resourceType"]
        for e in bundle["entry"]
    )
    refs = {m for m in _references(bundle)}
    assert refs <= urls | {NETWORK}, refs - urls


def _references(node: Any):
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "reference" and isinstance(value, str):
                yield value
            else:
                yield from _references(value)
    elif isinstance(node, list):
        for item in node:
            yield from _references(item)


def test_a_patient_with_a_cin_is_created_only_if_no_patient_has_that_cin():
    bundle = bundle_of("ab133-all-share")
    entry = bundle["entry"][0]
    assert entry["request"]["ifNoneExist"] == f"identifier={BASE}/sid/medi-cal-cin|91234567A"
    cin = entry["resource"]["identifier"][0]
    assert cin["system"] == f"{BASE}/sid/medi-cal-cin" and cin["value"] == "91234567A"
    assert cin["type"]["coding"][0]["code"] == "MA"


def test_a_patient_without_a_cin_is_matched_on_a_collector_scoped_key_of_name_and_birth_date():
    first, second = example("non-ab133-mixed"), example("non-ab133-mixed")
    second["individual"]["familyName"] = "OKAFOR "
    second["individual"]["phone"] = "707-555-0000"
    queries = [form_to_bundle(f, now=NOW)["entry"][0]["request"]["ifNoneExist"] for f in (first, second)]
    assert queries[0] == queries[1]
    assert queries[0].startswith(f"identifier={BASE}/sid/ascmi-individual|sha256-")
    other_collector = example("non-ab133-mixed")
    other_collector["collector"] = example("ab133-all-share")["collector"]
    assert form_to_bundle(other_collector, now=NOW)["entry"][0]["request"]["ifNoneExist"] != queries[0]


def test_the_patient_carries_the_demographics_of_the_form():
    patient = resources(bundle_of("ab133-all-share"), "Patient")[0]
    assert patient["name"] == [
        {"use": "official", "family": "Delgado-Ruiz", "given": ["Maria"]},
        {"text": "Maria Ruiz"},
    ]
    assert patient["birthDate"] == "1978-11-22"
    assert patient["telecom"] == [
        {"system": "phone", "value": "(707) 555-0148"},
        {"system": "email", "value": "maria.delgado@example.com"},
    ]
    assert patient["address"][0]["city"] == "Eureka"
    assert patient["communication"] == [
        {"language": {"coding": [{"system": "urn:ietf:bcp:47", "code": "es"}], "text": "es"}, "preferred": True}
    ]


def test_a_language_name_that_is_not_a_tag_is_kept_as_text():
    patient = resources(bundle_of("share-nothing"), "Patient")[0]
    assert patient["communication"][0]["language"] == {"text": "English"}


def test_each_care_partner_is_one_conditional_organization_even_when_named_twice():
    bundle = bundle_of("named-include-exclude")  # the collector is also an included recipient
    organizations = [e for e in bundle["entry"] if e["resource"]["resourceType"] == "Organization"]
    assert [o["resource"]["name"] for o in organizations] == [
        "Harbor Light ECM Partners",
        "Sierra Vista Community Clinic",
        "Bay Homes Community Supports",
        "Redwood County Department of Social Services",
    ]
    assert organizations[0]["request"]["ifNoneExist"] == "identifier=http://hl7.org/fhir/sid/us-npi|1612345094"


def test_any_identifier_of_a_care_partner_finds_it():
    bundle = bundle_of("ab133-all-share")
    assert bundle["entry"][1]["request"]["ifNoneExist"] == (
        "identifier=http://hl7.org/fhir/sid/us-npi|1456781230,urn:oid:2.16.840.1.113883.4.4|94-3175520"
    )


def test_a_care_partner_keeps_type_covered_entity_flag_and_state_with_ca_as_default():
    bundle = bundle_of("intermediary-hie")
    by_name = {o["name"]: o for o in resources(bundle, "Organization")}
    hie, nevada = by_name["Central Valley Health Connect"], by_name["Tahoe Basin Medical Group"]
    assert hie["type"][0]["coding"][0] == {
        "system": f"{BASE}/CodeSystem/care-partner-type",
        "code": "hie",
        "display": "Health information exchange",
    }
    assert hie["extension"] == [{"url": f"{BASE}/StructureDefinition/covered-entity", "valueBoolean": False}]
    assert hie["address"] == [{"state": "CA"}] and nevada["address"] == [{"state": "NV"}]


def test_every_named_care_partner_becomes_a_network_member_from_the_signed_date():
    bundle = bundle_of("named-include-exclude")
    memberships = resources(bundle, "OrganizationAffiliation")
    organizations = {full_url(bundle, o) for o in resources(bundle, "Organization")}
    assert {m["participatingOrganization"]["reference"] for m in memberships} == organizations
    for m in memberships:
        assert m["organization"] == {"reference": NETWORK}
        assert m["period"] == {"start": "2025-04-12"} and m["active"] is True


def test_the_consent_has_every_fixed_element_of_ascmi_consent():
    bundle = bundle_of("ab133-all-share")
    consent = consent_of(bundle)
    patient = full_url(bundle, resources(bundle, "Patient")[0])
    collector = full_url(bundle, resources(bundle, "Organization")[0])
    assert consent["meta"]["profile"] == [f"{BASE}/StructureDefinition/ASCMIConsent"]
    assert consent["status"] == "active"
    assert consent["scope"]["coding"][0]["code"] == "patient-privacy"
    assert [c["coding"][0]["code"] for c in consent["category"]] == ["64292-6", "AB133"]
    assert consent["category"][1]["coding"][0]["system"] == f"{BASE}/CodeSystem/ascmi-form"
    assert consent["policyRule"] == consent["category"][1]
    assert consent["patient"] == {"reference": patient}
    assert consent["performer"] == [{"reference": patient}]
    assert consent["organization"] == [{"reference": collector, "display": "Golden Poppy Health Plan"}]
    assert consent["dateTime"] == "2025-02-03"
    assert consent["policy"] == [{"uri": f"{BASE}/CodeSystem/ascmi-form/AB133/2025.1"}]
    assert consent["identifier"][0]["value"] == "GPHP-2025-000183"
    assert consent["identifier"][0]["system"] == f"{BASE}/sid/ascmi-form-id/1456781230"
    assert consent["identifier"][0]["assigner"]["reference"] == collector
    assert consent["provision"]["type"] == "deny"
    assert consent["provision"]["period"] == {"start": "2025-02-03"}
    assert consent["provision"]["extension"] == [
        {"url": f"{BASE}/StructureDefinition/ascmi-expiration-event", "valueCode": "medi-cal-disenrollment"}
    ]


def test_an_expiration_date_ends_the_root_period():
    assert consent_of(bundle_of("non-ab133-mixed"))["provision"]["period"] == {
        "start": "2025-03-14",
        "end": "2026-03-14",
    }


def test_each_shared_category_is_one_permit_to_the_network_for_the_forms_purposes(terminology):
    consent = consent_of(bundle_of("non-ab133-mixed"))
    permits = [p for p in consent["provision"]["provision"] if p["type"] == "permit"]
    assert [[c["code"] for c in p["securityLabel"]] for p in permits] == [
        ["N"],
        ["MH", "BH", "PSY"],
        ["STD"],
        ["social-services"],
    ]
    for p in permits:
        assert p["actor"] == [
            {"role": IRCP, "reference": {"reference": NETWORK, "display": p["actor"][0]["reference"]["display"]}}
        ]
        assert codes(p["purpose"]) == ["TREAT", "COC"]
        assert [a["coding"][0]["code"] for a in p["action"]] == ["access", "disclose"]


def test_each_category_not_shared_or_left_out_is_a_deny_with_its_labels_only(terminology):
    consent = consent_of(bundle_of("non-ab133-mixed"))
    denies = [p for p in consent["provision"]["provision"] if p["type"] == "deny"]
    shared = {"general-health", "mental-health", "sti", "social-services"}
    expected = [c for c in terminology.categories.values() if c.code not in shared]
    assert [p["securityLabel"] for p in denies] == [[lab.to_json() for lab in c.labels] for c in expected]
    assert all(set(p) == {"type", "securityLabel"} for p in denies)


def test_part2_and_substance_use_provisions_carry_their_own_labels():
    consent = consent_of(bundle_of("intermediary-hie"))
    labels = [codes(p.get("securityLabel", [])) for p in consent["provision"]["provision"] if p["type"] == "permit"]
    assert ["42CFRPart2"] in labels and ["SUD", "ETH"] in labels


def test_a_form_that_shares_nothing_is_an_active_consent_with_only_denies(terminology):
    consent = consent_of(bundle_of("share-nothing"))
    assert consent["status"] == "active"
    assert [p["type"] for p in consent["provision"]["provision"]] == ["deny"] * len(terminology.categories)


def test_without_all_care_partners_the_included_partners_are_the_actors_and_exclusions_are_denies():
    bundle = bundle_of("named-include-exclude")
    consent = consent_of(bundle)
    names = {full_url(bundle, o): o["name"] for o in resources(bundle, "Organization")}
    permit = next(p for p in consent["provision"]["provision"] if p["type"] == "permit")
    assert [names[a["reference"]["reference"]] for a in permit["actor"]] == [
        "Harbor Light ECM Partners",
        "Sierra Vista Community Clinic",
        "Bay Homes Community Supports",
    ]
    assert all(a["role"] == IRCP for a in permit["actor"])
    exclusion = consent["provision"]["provision"][-1]
    assert set(exclusion) == {"type", "actor"} and exclusion["type"] == "deny"
    assert names[exclusion["actor"][0]["reference"]["reference"]] == "Redwood County Department of Social Services"


def test_intermediaries_are_recipients_of_every_permit():
    bundle = bundle_of("intermediary-hie")
    hie = next(
        full_url(bundle, o) for o in resources(bundle, "Organization") if o["type"][0]["coding"][0]["code"] == "hie"
    )
    for p in consent_of(bundle)["provision"]["provision"]:
        if p["type"] == "permit":
            assert [a["reference"]["reference"] for a in p["actor"]] == [NETWORK, hie]


def test_a_minor_signature_marks_exactly_the_permits_the_minor_signed_for(terminology):
    bundle = bundle_of("minor-15")
    consent = consent_of(bundle)
    marked = [p["securityLabel"][0]["code"] for p in consent["provision"]["provision"] if "extension" in p]
    assert marked == ["MH", "STD", "SEX"]
    assert {p["extension"][0]["valueDate"] for p in consent["provision"]["provision"] if "extension" in p} == {
        "2025-05-20"
    }
    patient, parent = resources(bundle, "Patient")[0], resources(bundle, "RelatedPerson")[0]
    assert consent["performer"] == [{"reference": full_url(bundle, parent)}, {"reference": full_url(bundle, patient)}]
    signatures = resources(bundle, "Provenance")[0]["signature"]
    assert [s["who"]["reference"] for s in signatures] == [full_url(bundle, parent), full_url(bundle, patient)]


def test_a_representative_is_a_related_person_whose_authority_the_provenance_records():
    bundle = bundle_of("conservatorship")
    related = resources(bundle, "RelatedPerson")[0]
    patient_url = full_url(bundle, resources(bundle, "Patient")[0])
    assert related["patient"] == {"reference": patient_url}
    assert related["name"] == [{"text": "Linda Castellanos"}]
    assert codes(related["relationship"][0]["coding"]) == ["GUARD", "conservator"]
    consent = consent_of(bundle)
    assert consent["performer"] == [{"reference": full_url(bundle, related)}]
    provenance = resources(bundle, "Provenance")[0]
    agent = provenance["agent"][1]
    assert agent["who"]["reference"] == full_url(bundle, related)
    assert agent["onBehalfOf"] == {"reference": patient_url}
    assert agent["extension"][0]["valueString"].startswith("Letters of Conservatorship")
    assert provenance["signature"][0]["onBehalfOf"] == {"reference": patient_url}


def test_the_provenance_targets_the_consent_with_the_signature_and_the_collector():
    bundle = bundle_of("non-ab133-mixed")
    provenance = resources(bundle, "Provenance")[0]
    consent_url = bundle["entry"][produced_consent_index(bundle)]["fullUrl"]
    assert provenance["target"] == [{"reference": consent_url}]
    assert provenance["occurredDateTime"] == "2025-03-14"
    assert provenance["recorded"] == "2025-06-02T10:30:00-07:00"
    assert provenance["activity"]["coding"][0]["code"] == "CREATE"
    assert provenance["agent"][0]["who"]["display"] == "Sierra Vista Community Clinic"
    signature = provenance["signature"][0]
    assert signature["type"][0]["code"] == "1.2.840.10065.1.12.1.7"
    assert signature["when"] == "2025-03-14T00:00:00-07:00"
    assert signature["extension"][0]["valueCode"] == "wet"


def test_the_signature_date_is_the_start_of_that_day_in_the_server_time_zone():
    bundle = form_to_bundle(example("non-ab133-mixed"), now=NOW, tz="America/New_York")
    assert resources(bundle, "Provenance")[0]["signature"][0]["when"] == "2025-03-14T00:00:00-04:00"


def test_an_attached_form_is_a_document_reference_the_consent_points_to():
    bundle = bundle_of("with-attachment")
    document = resources(bundle, "DocumentReference")[0]
    form = example("with-attachment")
    assert document["content"][0]["attachment"]["data"] == form["attachment"]["data"]
    assert document["content"][0]["attachment"]["contentType"] == "application/pdf"
    assert consent_of(bundle)["sourceReference"] == {"reference": full_url(bundle, document)}
    assert resources(bundle, "Provenance")[0]["entity"] == [
        {"role": "source", "what": {"reference": full_url(bundle, document)}}
    ]


def test_moving_the_canonical_base_moves_every_url_of_the_bundle():
    bundle = form_to_bundle(example("minor-15"), now=NOW, canonical_base="https://consent.example.net/fhir")
    text = json.dumps(bundle)
    assert "ascmi.example.org" not in text
    assert "https://consent.example.net/fhir/sid/medi-cal-cin" in text


def test_ids_are_random_unless_a_factory_is_injected():
    a, b = (form_to_bundle(example("minor-15"), now=NOW) for _ in range(2))
    assert a["entry"][0]["fullUrl"] != b["entry"][0]["fullUrl"]
    assert bundle_of("minor-15") == bundle_of("minor-15")


def _value_at(node: Any, path: list[str]) -> list[Any]:
    values = [node]
    for key in path:
        nxt = []
        for v in values:
            child = v.get(key) if isinstance(v, dict) else None
            nxt += child if isinstance(child, list) else [] if child is None else [child]
        values = nxt
    return values


@pytest.mark.parametrize("name", example_names("form"))
def test_every_equal_row_of_the_form_to_fhir_concept_map_holds_in_the_example_bundles(name):
    concept_map = json.loads((ROOT / "mappings" / "ascmi-form-to-fhir.json").read_text())
    form, bundle = example(name), bundle_of(name)
    checked = 0
    for group in concept_map["group"]:
        for element in group["element"]:
            for target in element["target"]:
                if target["equivalence"] != "equal":
                    continue
                wanted = _value_at(form, element["code"].split("."))
                kind, *path = target["code"].split(".")
                found = [v for r in resources(bundle, kind) for v in _value_at(r, path)]
                for value in wanted:
                    assert value in found, (element["code"], target["code"], value)
                    checked += 1
    assert checked >= 8


def test_a_known_care_partner_is_referenced_by_id_and_its_later_membership_moves_back():
    form = example("non-ab133-mixed")
    clinic = {
        "resourceType": "Organization",
        "id": "clinic",
        "name": "Sierra Vista Community Clinic",
        "identifier": form["collector"]["identifiers"],
    }
    later = {
        "resourceType": "OrganizationAffiliation",
        "id": "m1",
        "meta": {"versionId": "3"},
        "active": True,
        "period": {"start": "2025-05-01"},
        "organization": {"reference": NETWORK},
        "participatingOrganization": {"reference": "Organization/clinic"},
    }
    known = [KnownPartner(Stored(clinic, "clinic", "1"), (Stored(later, "m1", "3"),))]
    bundle = form_to_bundle(form, now=NOW, known_partners=known)
    assert not resources(bundle, "Organization")
    assert consent_of(bundle)["organization"][0]["reference"] == "Organization/clinic"
    moved = next(e for e in bundle["entry"] if e["request"]["method"] == "PUT")
    assert moved["request"] == {"method": "PUT", "url": "OrganizationAffiliation/m1", "ifMatch": 'W/"3"'}
    assert moved["resource"]["period"] == {"start": "2025-03-14"}
    assert "versionId" not in moved["resource"]["meta"]


@pytest.mark.parametrize(
    ("affiliation", "expected"),
    [
        ({"active": True, "period": {"start": "2024-01-01"}}, []),
        ({"active": False, "period": {"start": "2024-01-01"}}, ["POST"]),
        ({"active": True, "period": {"start": "2024-01-01", "end": "2024-12-31"}}, ["POST"]),
    ],
)
def test_a_known_partner_gets_a_new_membership_only_when_none_is_open(affiliation, expected):
    form = example("non-ab133-mixed")
    clinic = {"resourceType": "Organization", "id": "clinic", "identifier": form["collector"]["identifiers"]}
    stored = Stored({"resourceType": "OrganizationAffiliation", **affiliation}, "m1", "1")
    bundle = form_to_bundle(form, now=NOW, known_partners=[KnownPartner(Stored(clinic, "clinic", "1"), (stored,))])
    methods = [
        e["request"]["method"] for e in bundle["entry"] if e["resource"]["resourceType"] == "OrganizationAffiliation"
    ]
    assert methods == expected


def test_the_produced_consent_is_found_for_the_location_header():
    bundle = bundle_of("with-attachment")
    assert bundle["entry"][produced_consent_index(bundle)]["resource"]["resourceType"] == "Consent"
    assert date.fromisoformat(consent_of(bundle)["dateTime"]) == date(2025, 5, 28)
