"""Validation against the R4 base definitions: structure, cardinality, types, bindings, invariants."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from fhir_server.fhir.outcome import Issue
from fhir_server.fhir.validation import DefinitionSource, Validator

from .samples import consent

Mutation = Callable[[dict[str, Any]], None]


@pytest.fixture(scope="module")
def validator() -> Validator:
    return Validator(DefinitionSource())


def errors(issues: list[Issue]) -> list[tuple[str, tuple[str, ...]]]:
    return [(i.code, i.expression) for i in issues if i.severity == "error"]


def _set(path: str, value: Any) -> Mutation:
    def mutate(resource: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        target: Any = resource
        for part in parents:
            target = target[int(part)] if part.isdigit() else target[part]
        if value is _DELETE:
            del target[last]
        else:
            target[last] = value

    return mutate


_DELETE = object()

FAILING: list[tuple[str, Mutation, str, str]] = [
    # (case, mutation, issue code, expression)
    ("missing status", _set("status", _DELETE), "required", "Consent.status"),
    ("missing scope", _set("scope", _DELETE), "required", "Consent.scope"),
    ("empty category", _set("category", []), "required", "Consent.category"),
    ("unknown element", _set("colour", "red"), "structure", "Consent.colour"),
    (
        "unknown nested element",
        _set("provision.provision.1.actor.0.rank", 1),
        "structure",
        "Consent.provision.provision[1].actor[0].rank",
    ),
    (
        "single value for a repeating element",
        _set("category", {"text": "x"}),
        "structure",
        "Consent.category",
    ),
    ("array for a single element", _set("scope", [{"text": "x"}]), "structure", "Consent.scope"),
    (
        "string where boolean expected",
        _set("provision.provision.0.type", True),
        "value",
        "Consent.provision.provision[0].type",
    ),
    ("bad dateTime format", _set("dateTime", "2024-13-01"), "value", "Consent.dateTime"),
    (
        "impossible calendar date",
        _set("provision.period.start", "2024-02-30"),
        "value",
        "Consent.provision.period.start",
    ),
    ("bad id", _set("id", "has space"), "value", "Consent.id"),
    (
        "object where string expected",
        _set("patient.reference", {"x": 1}),
        "value",
        "Consent.patient.reference",
    ),
    ("string where object expected", _set("patient", "Patient/p1"), "structure", "Consent.patient"),
    ("status not in the required value set", _set("status", "done"), "code-invalid", "Consent.status"),
    (
        "actor role missing",
        _set("provision.provision.1.actor.0.role", _DELETE),
        "required",
        "Consent.provision.provision[1].actor[0].role",
    ),
    (
        "reference to a type the element does not allow",
        _set("patient", {"reference": "Organization/o1"}),
        "structure",
        "Consent.patient",
    ),
    (
        "reference naming no resource type",
        _set("patient", {"reference": "Patint/p1"}),
        "structure",
        "Consent.patient",
    ),
    (
        "period ending before it starts (per-1)",
        _set("provision.period.end", "2020-01-01"),
        "invariant",
        "Consent.provision.period",
    ),
    ("ppc-1: neither policy nor policyRule", _set("policyRule", _DELETE), "invariant", "Consent"),
    (
        "ele-1: an empty object",
        _set("provision.provision.0.period", {}),
        "invariant",
        "Consent.provision.provision[0].period",
    ),
    (
        "ext-1: an extension with both value and extensions",
        _set(
            "extension",
            [{"url": "http://x.org/e", "valueString": "a", "extension": [{"url": "b", "valueString": "c"}]}],
        ),
        "invariant",
        "Consent.extension[0]",
    ),
    (
        "two choices for one element",
        _set("sourceReference", {"reference": "DocumentReference/d"}),
        "structure",
        "Consent.source",
    ),
    ("choice type not allowed", _set("sourceString", "x"), "structure", "Consent.sourceString"),
    (
        "unknown modifier extension",
        _set("modifierExtension", [{"url": "http://x.org/m", "valueBoolean": True}]),
        "structure",
        "Consent.modifierExtension[0]",
    ),
    ("primitive extension on a complex element", _set("_scope", {"id": "x"}), "structure", "Consent._scope"),
]


@pytest.mark.parametrize(("case", "mutate", "code", "expression"), FAILING, ids=[c[0] for c in FAILING])
def test_invalid_consent_yields_an_error_at_the_offending_element(
    validator: Validator, case: str, mutate: Mutation, code: str, expression: str
) -> None:
    resource = consent()
    if case == "two choices for one element":
        resource["sourceAttachment"] = {"url": "http://x.org/a.pdf"}
    mutate(resource)
    assert (code, (expression,)) in errors(validator.validate(resource))


PASSING: list[tuple[str, Mutation]] = [
    ("untouched", lambda r: None),
    (
        "policy instead of policyRule",
        lambda r: (r.pop("policyRule"), r.update(policy=[{"uri": "http://x.org"}])),
    ),
    (
        "primitive extension beside a value",
        _set(
            "_status",
            {
                "extension": [
                    {
                        "url": "http://hl7.org/fhir/StructureDefinition/data-absent-reason",
                        "valueCode": "unknown",
                    }
                ]
            },
        ),
    ),
    (
        "contained resource that is referenced",
        lambda r: r.update(
            contained=[{"resourceType": "Organization", "id": "o9", "name": "Clinic"}],
            organization=[{"reference": "#o9"}],
        ),
    ),
    ("absolute reference", _set("patient", {"reference": "https://ehr.example.org/fhir/Patient/p1"})),
    ("urn:uuid reference", _set("patient", {"reference": "urn:uuid:6f1c9b02-3c5e-4a7e-9e62-8a4f3b8e0f11"})),
    ("dateTime with year only", _set("dateTime", "2024")),
    ("single choice", _set("sourceAttachment", {"url": "http://x.org/a.pdf"})),
]


@pytest.mark.parametrize(("case", "mutate"), PASSING, ids=[c[0] for c in PASSING])
def test_valid_consent_variants_have_no_errors(validator: Validator, case: str, mutate: Mutation) -> None:
    resource = consent()
    mutate(resource)
    assert errors(validator.validate(resource)) == []


def test_dom_3_flags_a_contained_resource_nobody_references(validator: Validator) -> None:
    resource = consent()
    resource["contained"] = [{"resourceType": "Organization", "id": "lonely", "name": "x"}]
    assert ("invariant", ("Consent",)) in errors(validator.validate(resource))


def test_dom_6_missing_narrative_is_a_warning_not_an_error(validator: Validator) -> None:
    resource = consent()
    del resource["text"]
    issues = validator.validate(resource)
    assert errors(issues) == []
    assert any(i.code == "invariant" and "dom-6" in i.diagnostics for i in issues if i.severity == "warning")


@pytest.mark.parametrize(
    ("code", "expect_error"),
    [("patient-privacy", False), ("research", False), ("adr", False), ("treatment", False)],
)
def test_ppc_2_to_5_accept_a_consent_with_a_patient(
    validator: Validator, code: str, expect_error: bool
) -> None:
    # R4 4.0.1 ships ppc-2..5 comparing with system 'something', so they only fail for that system
    resource = consent()
    resource["scope"] = {"coding": [{"system": "something", "code": code}]}
    assert (("invariant", ("Consent",)) in errors(validator.validate(resource))) is expect_error
    del resource["patient"]
    found = [i for i in validator.validate(resource) if i.code == "invariant" and i.severity == "error"]
    key = {"patient-privacy": "ppc-2", "research": "ppc-3", "adr": "ppc-4", "treatment": "ppc-5"}[code]
    assert any(key in i.diagnostics for i in found)


PATIENTS: list[tuple[str, dict[str, Any], bool]] = [
    ("contact with a name", {"contact": [{"name": {"family": "Doe"}}]}, True),
    (
        "contact with only a relationship (pat-1)",
        {"contact": [{"relationship": [{"text": "friend"}]}]},
        False,
    ),
    ("gender outside administrative-gender", {"gender": "f"}, False),
    ("birthDate as dateTime", {"birthDate": "2000-01-01T00:00:00Z"}, False),
    ("deceased both boolean and dateTime", {"deceasedBoolean": True, "deceasedDateTime": "2020"}, False),
    ("multipleBirthInteger out of 32-bit range", {"multipleBirthInteger": 2**40}, False),
]


@pytest.mark.parametrize(("case", "fields", "valid"), PATIENTS, ids=[p[0] for p in PATIENTS])
def test_patient_rules(validator: Validator, case: str, fields: dict[str, Any], valid: bool) -> None:
    patient = {
        "resourceType": "Patient",
        "text": {"status": "generated", "div": '<div xmlns="http://www.w3.org/1999/xhtml">x</div>'},
        **fields,
    }
    assert (errors(validator.validate(patient)) == []) is valid


@pytest.mark.parametrize(
    ("fields", "valid"),
    [
        ({"name": "Care Partner A"}, True),
        ({"identifier": [{"value": "123"}]}, True),
        ({"active": True}, False),  # org-1
        ({"name": "A", "telecom": [{"system": "phone", "value": "1", "use": "home"}]}, False),  # org-3
    ],
)
def test_organization_needs_identifier_or_name_and_no_home_contacts(
    validator: Validator, fields: dict[str, Any], valid: bool
) -> None:
    issues = validator.validate({"resourceType": "Organization", **fields})
    assert (errors(issues) == []) is valid
    if not valid:
        assert all(code == "invariant" for code, _ in errors(issues))


def test_unknown_resource_type_is_not_supported(validator: Validator) -> None:
    assert errors(validator.validate({"resourceType": "Consentt"})) == [("not-supported", ())]


def test_resource_without_resource_type_is_a_structure_error(validator: Validator) -> None:
    assert [i.code for i in validator.validate({"id": "x"})] == ["structure"]


def test_unknown_extension_is_an_error_as_in_the_hl7_validator(validator: Validator) -> None:
    resource = consent()
    resource["extension"] = [{"url": "http://unknown.org/ext", "valueString": "x"}]
    issues = validator.validate(resource)
    assert errors(issues) == [("structure", ("Consent.extension[0]",))]


def test_unknown_extension_is_a_warning_in_the_lenient_reading() -> None:
    resource = consent()
    resource["extension"] = [{"url": "http://unknown.org/ext", "valueString": "x"}]
    issues = Validator(unknown_extensions="warning").validate(resource)
    assert errors(issues) == []
    assert [(i.code, i.expression) for i in issues if i.severity == "warning"] == [
        ("not-found", ("Consent.extension[0]",))
    ]


def test_unknown_example_extension_is_only_information(validator: Validator) -> None:
    resource = consent()
    resource["extension"] = [{"url": "http://example.org/fhir/StructureDefinition/x", "valueString": "x"}]
    issues = validator.validate(resource)
    assert [i.severity for i in issues if i.expression == ("Consent.extension[0]",)] == ["information"]


def test_core_extension_is_validated_against_its_definition(validator: Validator) -> None:
    resource = consent()
    resource["_status"] = {
        "extension": [
            {"url": "http://hl7.org/fhir/StructureDefinition/data-absent-reason", "valueString": "unknown"}
        ]
    }
    # FHIRPath addresses a primitive's extensions through the primitive itself (no underscore)
    assert ("structure", ("Consent.status.extension[0].valueString",)) in errors(validator.validate(resource))


def test_bundle_entries_are_validated_as_their_own_resource_types(validator: Validator) -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {
                "fullUrl": "urn:uuid:6f1c9b02-3c5e-4a7e-9e62-8a4f3b8e0f11",
                "resource": {"resourceType": "Patient", "gender": "f"},
            }
        ],
    }
    assert errors(validator.validate(bundle)) == [("code-invalid", ("Bundle.entry[0].resource.gender",))]


def test_decimal_keeps_precision_and_is_accepted(validator: Validator) -> None:
    from fhir_server.fhir import jsonio

    obs = jsonio.loads(
        b'{"resourceType": "Observation", "status": "final", "code": {"text": "x"},'
        b' "valueQuantity": {"value": 1.50, "unit": "mg"}}'
    )
    assert errors(validator.validate(obs)) == []


def test_an_invariant_fhirpath_cannot_evaluate_is_a_warning_naming_it() -> None:
    from .samples import EX

    profile = {
        "resourceType": "StructureDefinition",
        "url": f"{EX}/StructureDefinition/odd",
        "name": "Odd",
        "kind": "resource",
        "type": "Organization",
        "abstract": False,
        "derivation": "constraint",
        "baseDefinition": "http://hl7.org/fhir/StructureDefinition/Organization",
        "differential": {
            "element": [
                {
                    "id": "Organization",
                    "path": "Organization",
                    "constraint": [
                        {
                            "key": "odd-1",
                            "severity": "error",
                            "human": "odd",
                            "expression": "name.noSuchFunction()",
                        }
                    ],
                }
            ]
        },
    }
    issues = Validator(DefinitionSource([profile])).validate(
        {"resourceType": "Organization", "name": "A"}, [profile["url"]]
    )
    assert [(i.severity, i.code) for i in issues if "odd-1" in i.diagnostics] == [("warning", "processing")]


MALFORMED: list[tuple[str, Mutation]] = [
    ("null element", _set("scope", None)),
    ("number where a CodeableConcept is expected", _set("scope", 3)),
    ("coding that is not a list", _set("scope", {"coding": 3})),
    ("system that is an object", _set("scope", {"coding": [{"system": {}, "code": 1}]})),
    ("extension list of numbers", _set("extension", [1, 2])),
    ("contained that is not a list", _set("contained", {"resourceType": "Patient"})),
    ("contained without resourceType", _set("contained", [{"id": "x"}])),
    ("reference that is a number", _set("patient", {"reference": 7})),
    ("nested arrays", _set("category", [[{"text": "x"}]])),
]


@pytest.mark.parametrize(("case", "mutate"), MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_json_shapes_become_errors_not_exceptions(
    validator: Validator, case: str, mutate: Mutation
) -> None:
    resource = consent()
    mutate(resource)
    codes = {code for code, _ in errors(validator.validate(resource))}
    assert codes and "exception" not in codes
