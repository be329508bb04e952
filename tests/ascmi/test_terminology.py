"""The ASCMI code lists are data: loaded from profiles/ and mappings/, moved with the canonical base."""

from __future__ import annotations

import doctest
import importlib
import json

import pytest

from fhir_server.ascmi.canonical import DEFAULT_BASE, Canonical, rebase
from fhir_server.ascmi.terminology import conformance_resources, load_terminology
from tests.ascmi.conftest import ROOT

V3 = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
LABELS = [
    ("general-health", [("http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "N")]),
    ("mental-health", [(V3, "MH"), (V3, "BH"), (V3, "PSY")]),
    ("substance-use-part2", [(V3, "42CFRPart2")]),
    ("substance-use", [(V3, "SUD"), (V3, "ETH")]),
    ("hiv", [(V3, "HIV")]),
    ("sti", [(V3, "STD")]),
    ("reproductive-health", [(V3, "SEX")]),
    ("gender-affirming-care", [(V3, "GENDER")]),
    ("intimate-partner-violence", [(V3, "SDV")]),
    ("social-services", [(f"{DEFAULT_BASE}/CodeSystem/ascmi-category", "social-services")]),
    ("developmental-services", [(V3, "DVD")]),
    ("education", [(f"{DEFAULT_BASE}/CodeSystem/ascmi-category", "education")]),
]
MINOR = {
    "mental-health",
    "substance-use-part2",
    "substance-use",
    "sti",
    "reproductive-health",
    "intimate-partner-violence",
}


@pytest.mark.parametrize(("category", "labels"), LABELS)
def test_each_category_has_the_security_labels_of_the_contract(category, labels, terminology):
    assert [(c.system, c.code) for c in terminology.categories[category].labels] == labels


def test_the_categories_a_minor_may_consent_to_alone_are_data(terminology):
    assert {c.code for c in terminology.categories.values() if c.minor_may_consent} == MINOR
    assert terminology.categories["reproductive-health"].minor_minimum_age == 0


def test_purposes_are_the_tpo_codes_plus_the_local_social_services(terminology):
    assert {k: v.system.rsplit("/", 1)[1] for k, v in terminology.purposes.items()} == {
        "TREAT": "v3-ActReason",
        "COC": "v3-ActReason",
        "CAREMGT": "v3-ActReason",
        "HPAYMT": "v3-ActReason",
        "HOPERAT": "v3-ActReason",
        "social-services": "ascmi-purpose",
    }


def test_the_care_partner_types_and_form_types_are_the_contracts(terminology):
    assert list(terminology.care_partner_types) == [
        "health-plan",
        "provider",
        "county-behavioral-health",
        "county-social-services",
        "ecm-provider",
        "community-supports-provider",
        "cbo",
        "part2-program",
        "hie",
    ]
    assert list(terminology.form_types) == ["AB133", "NON-AB133", "REVOCATION", "CONFIDENTIAL-COMMUNICATIONS"]
    # ASCMI.md §6: a confidential communications request records no sharing choice and never governs.
    assert terminology.non_sharing_forms == {"CONFIDENTIAL-COMMUNICATIONS"}


def test_the_schema_files_list_the_same_codes_the_code_systems_do(terminology):
    on_disk = json.loads((ROOT / "profiles" / "ascmi-form.schema.json").read_text())["$defs"]
    assert on_disk["categoryCode"]["enum"] == list(terminology.categories)
    assert on_disk["purposeCode"]["enum"] == list(terminology.purposes)
    assert on_disk["carePartnerType"]["enum"] == list(terminology.care_partner_types)
    assert on_disk["expirationEvent"]["enum"] == list(terminology.expiration_events)


def test_psychotherapy_notes_are_listed_as_never_shareable():
    vs = json.loads((ROOT / "profiles" / "ValueSet-ascmi-never-shareable.json").read_text())
    assert vs["compose"]["include"][0]["concept"][0]["code"] == "PSYTHPN"


def test_moving_the_canonical_base_moves_every_url_including_identifier_systems():
    moved = load_terminology("https://consent.example.net/fhir/")
    assert moved.base == "https://consent.example.net/fhir"
    assert moved.canonical.medi_cal_cin == "https://consent.example.net/fhir/sid/medi-cal-cin"
    assert (
        moved.categories["education"].labels[0].system == "https://consent.example.net/fhir/CodeSystem/ascmi-category"
    )
    assert moved.form_schema["$id"] == "https://consent.example.net/fhir/ascmi-form.schema.json"
    assert DEFAULT_BASE not in json.dumps(conformance_resources("https://consent.example.net/fhir"))


def test_rebase_leaves_other_urls_alone():
    value = {"a": [DEFAULT_BASE + "/x", "http://loinc.org"], "b": 1}
    assert rebase(value, "https://n.example/fhir") == {"a": ["https://n.example/fhir/x", "http://loinc.org"], "b": 1}
    assert Canonical("https://n.example/fhir/").valueset("v") == "https://n.example/fhir/ValueSet/v"


def test_every_conformance_resource_lives_under_the_canonical_base():
    for resource in conformance_resources():
        assert resource["url"] == f"{DEFAULT_BASE}/{resource['resourceType']}/{resource['id']}"


@pytest.mark.parametrize("module", ["canonical", "bundle", "jsonpath", "schema", "patient"])
def test_the_docstring_examples_hold(module):
    result = doctest.testmod(importlib.import_module(f"fhir_server.ascmi.{module}"))
    assert result.failed == 0


def test_the_decision_engine_reads_its_category_table_from_the_code_system_and_concept_map(terminology):
    from fhir_server.consent.tables import load_tables

    tables = load_tables(terminology.base)
    engine = {
        c.code: ([(lab.system, lab.code) for lab in c.labels], c.minor_may_consent_alone, c.display)
        for c in tables.categories.values()
    }
    ours = {
        c.code: ([(lab.system, lab.code) for lab in c.labels], c.minor_may_consent, c.display)
        for c in terminology.categories.values()
    }
    assert engine == ours
    assert list(tables.categories) == list(terminology.categories)


def test_the_engines_own_category_file_does_not_repeat_the_terminology():
    table = json.loads((ROOT / "fhir_server" / "data" / "consent-categories.json").read_text())
    assert set(table) == {"description", "defaultCategory", "absorbsWhenRequestedTogether", "neverShareableWhy"}
