"""Validation against a profile written in the test (differential only, so snapshot generation runs too)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from fhir_server.fhir.outcome import Issue
from fhir_server.fhir.validation import DefinitionSource, Validator

from .samples import (
    CLOSED_CATEGORY_CONSENT,
    EX,
    HELD,
    LOINC,
    SIGNATURE_EXTENSION,
    TEST_CONSENT,
    V3_ACT,
    consent,
)

PROFILE = TEST_CONSENT["url"]
Mutation = Callable[[dict[str, Any]], None]


@pytest.fixture(scope="module")
def validator() -> Validator:
    return Validator(DefinitionSource(HELD))


def errors(issues: list[Issue]) -> list[tuple[str, tuple[str, ...]]]:
    return [(i.code, i.expression) for i in issues if i.severity == "error"]


def test_conforming_consent_has_no_issues(validator: Validator) -> None:
    assert validator.validate(consent(), [PROFILE]) == []


FAILING: list[tuple[str, Mutation, str, str]] = [
    ("fixed code differs", lambda r: r.update(status="draft"), "value", "Consent.status"),
    (
        "pattern not contained",
        lambda r: r["scope"]["coding"][0].update(code="research"),
        "value",
        "Consent.scope",
    ),
    ("profile raises min of identifier", lambda r: r.pop("identifier"), "required", "Consent.identifier"),
    (
        "required slice missing",
        lambda r: r.update(category=r["category"][1:]),
        "required",
        "Consent.category",
    ),
    (
        "slice max exceeded",
        lambda r: r["category"].append({"coding": [{"system": LOINC, "code": "59284-0"}]}),
        "structure",
        "Consent.category",
    ),
    ("required extension slice missing", lambda r: r.pop("extension"), "required", "Consent.extension"),
    (
        "extension value outside its required binding",
        lambda r: r["extension"][0].update(valueCode="fax"),
        "code-invalid",
        "Consent.extension[0].valueCode",
    ),
    (
        "extension value of a type the extension does not allow",
        lambda r: r["extension"][0].update(valueString="wet") or r["extension"][0].pop("valueCode"),
        "structure",
        "Consent.extension[0].valueString",
    ),
    (
        "profile binding on a nested element",
        lambda r: r["provision"]["actor"][0]["role"]["coding"][0].update(code="PRCP"),
        "code-invalid",
        "Consent.provision.actor[0].role",
    ),
    (
        "profile narrows reference targets",
        lambda r: r.update(performer=[{"reference": "Patient/p1"}]),
        "structure",
        "Consent.performer[0]",
    ),
    (
        "profile constrains inside a datatype",
        lambda r: r["provision"]["actor"][0].update(role={"text": "x"}),
        "required",
        "Consent.provision.actor[0].role.coding",
    ),
    (
        "profile lowers max",
        lambda r: r["provision"]["purpose"].append(
            {"system": "http://terminology.hl7.org/CodeSystem/v3-ActReason", "code": "HPAYMT"}
        ),
        "structure",
        "Consent.provision.purpose",
    ),
]


@pytest.mark.parametrize(("case", "mutate", "code", "expression"), FAILING, ids=[c[0] for c in FAILING])
def test_profile_violations_are_errors_at_the_element(
    validator: Validator, case: str, mutate: Mutation, code: str, expression: str
) -> None:
    resource = consent()
    mutate(resource)
    assert (code, (expression,)) in errors(validator.validate(resource, [PROFILE]))


def test_a_code_found_through_the_code_system_hierarchy_is_accepted(validator: Validator) -> None:
    resource = consent()
    resource["extension"][0]["valueCode"] = "typed"  # a child concept of 'electronic'
    assert errors(validator.validate(resource, [PROFILE])) == []


def test_open_slicing_accepts_extra_items_and_closed_slicing_rejects_them(validator: Validator) -> None:
    resource = consent()
    assert errors(validator.validate(resource, [PROFILE])) == []
    assert errors(validator.validate(resource, [CLOSED_CATEGORY_CONSENT["url"]])) == [
        ("structure", ("Consent.category[1]",))
    ]
    resource["category"] = resource["category"][:1]
    assert errors(validator.validate(resource, [CLOSED_CATEGORY_CONSENT["url"]])) == []


def test_unknown_profile_is_a_not_found_error(validator: Validator) -> None:
    assert errors(validator.validate(consent(), [f"{EX}/StructureDefinition/nope"])) == [("not-found", ())]


def test_profile_for_another_resource_type_is_a_processing_error(validator: Validator) -> None:
    issues = validator.validate({"resourceType": "Organization", "name": "A"}, [PROFILE])
    assert errors(issues) == [("processing", ("Organization",))]


def test_meta_profile_is_checked_on_request(validator: Validator) -> None:
    resource = consent()
    resource["status"] = "draft"
    resource["meta"] = {"profile": [PROFILE]}
    assert errors(validator.validate(resource)) == []
    assert ("value", ("Consent.status",)) in errors(validator.validate(resource, meta_profiles=True))


def test_type_discriminator_slices_bundle_entries_by_resource_type() -> None:
    profile = {
        "resourceType": "StructureDefinition",
        "url": f"{EX}/StructureDefinition/consent-bundle",
        "name": "ConsentBundle",
        "kind": "resource",
        "abstract": False,
        "type": "Bundle",
        "derivation": "constraint",
        "baseDefinition": "http://hl7.org/fhir/StructureDefinition/Bundle",
        "differential": {
            "element": [
                {
                    "id": "Bundle.entry",
                    "path": "Bundle.entry",
                    "slicing": {"discriminator": [{"type": "type", "path": "resource"}], "rules": "closed"},
                },
                {
                    "id": "Bundle.entry:consent",
                    "path": "Bundle.entry",
                    "sliceName": "consent",
                    "min": 1,
                    "max": "1",
                },
                {
                    "id": "Bundle.entry:consent.resource",
                    "path": "Bundle.entry.resource",
                    "type": [{"code": "Consent"}],
                },
            ]
        },
    }
    v = Validator(DefinitionSource([*HELD, profile]))
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": consent()}]}
    assert errors(v.validate(bundle, [profile["url"]])) == []
    bundle["entry"].append({"resource": {"resourceType": "Organization", "name": "A"}})
    assert errors(v.validate(bundle, [profile["url"]])) == [("structure", ("Bundle.entry[1]",))]


def test_value_discriminator_on_a_nested_path_selects_the_slice() -> None:
    profile = {
        "resourceType": "StructureDefinition",
        "url": f"{EX}/StructureDefinition/labelled-consent",
        "name": "LabelledConsent",
        "kind": "resource",
        "abstract": False,
        "type": "Consent",
        "derivation": "constraint",
        "baseDefinition": "http://hl7.org/fhir/StructureDefinition/Consent",
        "differential": {
            "element": [
                {
                    "id": "Consent.provision.securityLabel",
                    "path": "Consent.provision.securityLabel",
                    "slicing": {"discriminator": [{"type": "value", "path": "system"}], "rules": "closed"},
                },
                {
                    "id": "Consent.provision.securityLabel:act",
                    "path": "Consent.provision.securityLabel",
                    "sliceName": "act",
                    "min": 1,
                },
                {
                    "id": "Consent.provision.securityLabel:act.system",
                    "path": "Consent.provision.securityLabel.system",
                    "fixedUri": V3_ACT,
                },
            ]
        },
    }
    v = Validator(DefinitionSource([profile]))
    resource = consent()
    resource["provision"]["securityLabel"] = [{"system": V3_ACT, "code": "PSY"}]
    # nested provisions reuse Consent.provision (contentReference), slices and all
    assert errors(v.validate(resource, [profile["url"]])) == [
        ("required", ("Consent.provision.provision[1].securityLabel",))
    ]
    resource["provision"]["provision"][1]["securityLabel"] = [{"system": V3_ACT, "code": "PSY"}]
    assert errors(v.validate(resource, [profile["url"]])) == []
    resource["provision"]["securityLabel"].append({"system": "http://other.org", "code": "x"})
    assert errors(v.validate(resource, [profile["url"]])) == [
        ("structure", ("Consent.provision.securityLabel[1]",))
    ]


def test_extension_definition_is_used_for_extensions_outside_any_slice(validator: Validator) -> None:
    patient = {
        "resourceType": "Patient",
        "extension": [{"url": SIGNATURE_EXTENSION["url"], "valueCode": "x"}],
    }
    assert ("code-invalid", ("Patient.extension[0].valueCode",)) in errors(validator.validate(patient))
