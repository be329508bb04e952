"""Profile rules beyond structure: code-less concepts, any-of type profiles, extension contexts, widening."""

from __future__ import annotations

from typing import Any

import pytest

from fhir_server.fhir.outcome import Issue
from fhir_server.fhir.validation import DefinitionSource, Validator

from .samples import EX, HELD, SCOPE, TEST_CONSENT, consent

CORE = "http://hl7.org/fhir/StructureDefinition/"


def errors(issues: list[Issue]) -> list[tuple[str, tuple[str, ...]]]:
    return [(i.code, i.expression) for i in issues if i.severity == "error"]


def sd(name: str, type_: str, base: str, elements: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {
        "resourceType": "StructureDefinition",
        "url": f"{EX}/StructureDefinition/{name}",
        "name": name,
        "status": "active",
        "kind": "resource" if type_[0].isupper() and type_ not in ("Period", "Extension") else "complex-type",
        "abstract": False,
        "type": type_,
        "derivation": "constraint",
        "baseDefinition": base,
        "differential": {"element": elements},
        **extra,
    }


# -- 1. a CodeableConcept with no code under a required binding ------------------------------------------------

BINDING: list[tuple[str, str, dict[str, Any], list[tuple[str, tuple[str, ...]]]]] = [
    ("text only is an error", "required", {"text": "privacy"}, [("code-invalid", ("Consent.scope",))]),
    (
        "codings without a code are an error",
        "required",
        {"coding": [{"system": SCOPE, "display": "Privacy"}]},
        [("code-invalid", ("Consent.scope",))],
    ),
    ("text only is fine", "extensible", {"text": "privacy"}, []),
    (
        "a code from the value set with text is fine",
        "required",
        {"coding": [{"system": SCOPE, "code": "patient-privacy"}], "text": "privacy"},
        [],
    ),
]


@pytest.mark.parametrize(("case", "strength", "scope", "expected"), BINDING, ids=[b[0] for b in BINDING])
def test_a_codeable_concept_without_a_code_fails_a_required_binding_but_not_an_extensible_one(
    case: str, strength: str, scope: dict[str, Any], expected: list[tuple[str, tuple[str, ...]]]
) -> None:
    profile = sd(
        f"scope-{strength}",
        "Consent",
        CORE + "Consent",
        [
            {
                "id": "Consent.scope",
                "path": "Consent.scope",
                "binding": {"strength": strength, "valueSet": "http://hl7.org/fhir/ValueSet/consent-scope"},
            }
        ],
    )
    resource = consent()
    resource["scope"] = scope
    issues = Validator(DefinitionSource([*HELD, profile])).validate(resource, [profile["url"]])
    assert errors(issues) == expected


# -- 2. several profiles on one type: any of them will do -------------------------------------------------------

PERIOD_WITH_START = sd(
    "period-with-start", "Period", CORE + "Period", [{"id": "Period.start", "path": "Period.start", "min": 1}]
)
PERIOD_WITH_END = sd(
    "period-with-end", "Period", CORE + "Period", [{"id": "Period.end", "path": "Period.end", "min": 1}]
)
BOUNDED_CONSENT = sd(
    "bounded-consent",
    "Consent",
    CORE + "Consent",
    [
        {
            "id": "Consent.provision.period",
            "path": "Consent.provision.period",
            "type": [{"code": "Period", "profile": [PERIOD_WITH_START["url"], PERIOD_WITH_END["url"]]}],
        }
    ],
)
DRAFT_CONSENT = sd(
    "draft-consent",
    "Consent",
    CORE + "Consent",
    [{"id": "Consent.status", "path": "Consent.status", "fixedCode": "draft"}],
)
ACTIVE_CONSENT = sd(
    "active-consent",
    "Consent",
    CORE + "Consent",
    [{"id": "Consent.status", "path": "Consent.status", "fixedCode": "active"}],
)
CONSENT_BUNDLE = sd(
    "consent-bundle",
    "Bundle",
    CORE + "Bundle",
    [
        {
            "id": "Bundle.entry.resource",
            "path": "Bundle.entry.resource",
            "type": [{"code": "Consent", "profile": [DRAFT_CONSENT["url"], ACTIVE_CONSENT["url"]]}],
        }
    ],
)
ANY_OF_HELD = [
    *HELD,
    PERIOD_WITH_START,
    PERIOD_WITH_END,
    BOUNDED_CONSENT,
    DRAFT_CONSENT,
    ACTIVE_CONSENT,
    CONSENT_BUNDLE,
]


def _period(period: dict[str, Any]) -> tuple[dict[str, Any], str]:
    resource = consent()
    resource["provision"]["period"] = period
    return resource, BOUNDED_CONSENT["url"]


def _entry(status: str) -> tuple[dict[str, Any], str]:
    resource = consent()
    resource["status"] = status
    return {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"resource": resource}],
    }, CONSENT_BUNDLE["url"]


ANY_OF: list[tuple[str, tuple[dict[str, Any], str], tuple[str, tuple[str, ...]] | None]] = [
    ("a datatype conforming to the first profile passes", _period({"start": "2024-05-01"}), None),
    ("a datatype conforming only to the second profile passes", _period({"end": "2025-05-01"}), None),
    (
        "a datatype conforming to neither profile fails",
        _period({"id": "p"}),
        ("structure", ("Consent.provision.period",)),
    ),
    ("a resource conforming to the first profile passes", _entry("draft"), None),
    ("a resource conforming only to the second profile passes", _entry("active"), None),
    (
        "a resource conforming to neither profile fails",
        _entry("rejected"),
        ("structure", ("Bundle.entry[0].resource",)),
    ),
]


@pytest.mark.parametrize(("case", "value", "error"), ANY_OF, ids=[a[0] for a in ANY_OF])
def test_a_value_conforming_to_any_of_several_type_profiles_passes(
    case: str, value: tuple[dict[str, Any], str], error: tuple[str, tuple[str, ...]] | None
) -> None:
    resource, url = value
    found = errors(Validator(DefinitionSource(ANY_OF_HELD)).validate(resource, [url]))
    if error is None:
        assert found == []
    else:
        assert error in found


# -- 3. extension context ------------------------------------------------------------------------------------


def extension(name: str, *contexts: tuple[str, str]) -> dict[str, Any]:
    url = f"{EX}/StructureDefinition/{name}"
    return sd(
        name,
        "Extension",
        CORE + "Extension",
        [
            {"id": "Extension.url", "path": "Extension.url", "fixedUri": url},
            {"id": "Extension.value[x]", "path": "Extension.value[x]", "type": [{"code": "string"}]},
        ],
        context=[{"type": t, "expression": e} for t, e in contexts],
    )


ON_CONSENT = extension("on-consent", ("element", "Consent"))
ON_PROVISION = extension("on-provision", ("element", "Consent.provision"))
ON_PERIOD = extension("on-period", ("element", "Period"))
ON_ANYTHING = extension("on-anything", ("element", "Element"))
BY_FHIRPATH = extension("by-fhirpath", ("fhirpath", "Consent.provision.where(type='deny')"))
ON_EXTENSION = extension("on-extension", ("extension", ON_CONSENT["url"]))
CONTEXTS_HELD = [ON_CONSENT, ON_PROVISION, ON_PERIOD, ON_ANYTHING, BY_FHIRPATH, ON_EXTENSION]


def _put(where: str, ext: dict[str, Any]) -> dict[str, Any]:
    resource = consent()
    target: Any = resource
    for step in where.split(".")[1:]:
        target = target[int(step)] if step.isdigit() else target[step]
    item: dict[str, Any] = {"url": ext["url"], "valueString": "x"}
    if ext is ON_EXTENSION:
        item = {"url": ON_CONSENT["url"], "extension": [item]}
    target.setdefault("extension", []).append(item)
    return resource


CONTEXTS: list[tuple[str, dict[str, Any], str, str | None]] = [
    ("a resource-level extension on its resource is allowed", ON_CONSENT, "Consent", None),
    (
        "a resource-level extension inside a backbone element is not",
        ON_CONSENT,
        "Consent.provision",
        "Consent.provision.extension[0]",
    ),
    ("an element extension on its element is allowed", ON_PROVISION, "Consent.provision", None),
    (
        "an element extension on a nested reuse of its element is allowed",
        ON_PROVISION,
        "Consent.provision.provision.0",
        None,
    ),
    ("an element extension on the resource root is not", ON_PROVISION, "Consent", "Consent.extension[1]"),
    ("a datatype extension on a value of that type is allowed", ON_PERIOD, "Consent.provision.period", None),
    (
        "a datatype extension on another type is not",
        ON_PERIOD,
        "Consent.provision.actor.0.role",
        "Consent.provision.actor[0].role.extension[0]",
    ),
    ("an Element extension is allowed anywhere", ON_ANYTHING, "Consent.provision.actor.0.role", None),
    ("a fhirpath context is not judged", BY_FHIRPATH, "Consent", None),
    ("an extension-context extension inside an extension is allowed", ON_EXTENSION, "Consent", None),
]


@pytest.mark.parametrize(("case", "ext", "where", "flagged"), CONTEXTS, ids=[c[0] for c in CONTEXTS])
def test_an_extension_used_outside_its_context_is_an_error_naming_it_and_the_element(
    case: str, ext: dict[str, Any], where: str, flagged: str | None
) -> None:
    issues = Validator(DefinitionSource(CONTEXTS_HELD)).validate(_put(where, ext))
    found = [i for i in issues if "context" in i.diagnostics]
    assert [i for i in issues if i.severity == "error" and "context" not in i.diagnostics] == []
    if flagged is None:
        assert found == [] and errors(issues) == []
    else:  # an error, as in the HL7 validator ("is not allowed to be used at this point")
        assert [(i.severity, i.expression) for i in found] == [("error", (flagged,))]
        assert ext["url"] in found[0].diagnostics
        assert where.split(".0")[0].split(".")[-1] in found[0].diagnostics


# -- 4. a differential may only narrow cardinality ----------------------------------------------------------------

WIDENING: list[tuple[str, str, list[dict[str, Any]], str | None]] = [
    (
        "min below the base min is an error",
        CORE + "Consent",
        [{"id": "Consent.status", "path": "Consent.status", "min": 0}],
        "Consent.status",
    ),
    (
        "max above the base max is an error",
        CORE + "Consent",
        [{"id": "Consent.scope", "path": "Consent.scope", "max": "*"}],
        "Consent.scope",
    ),
    (
        "max above the parent profile's max is an error",
        TEST_CONSENT["url"],
        [{"id": "Consent.provision.purpose", "path": "Consent.provision.purpose", "max": "2"}],
        "Consent.provision.purpose",
    ),
    (
        "a slice max above the sliced element's max is an error",
        CORE + "Consent",
        [
            {
                "id": "Consent.scope.coding",
                "path": "Consent.scope.coding",
                "max": "1",
                "slicing": {"discriminator": [{"type": "value", "path": "system"}], "rules": "open"},
            },
            {"id": "Consent.scope.coding:a", "path": "Consent.scope.coding", "sliceName": "a", "max": "2"},
        ],
        "Consent.scope.coding:a",
    ),
    (
        "narrowing is fine",
        CORE + "Consent",
        [{"id": "Consent.category", "path": "Consent.category", "min": 2, "max": "3"}],
        None,
    ),
    (
        "a slice with min 0 under a required element is fine",
        CORE + "Consent",
        [
            {
                "id": "Consent.category",
                "path": "Consent.category",
                "slicing": {"discriminator": [{"type": "pattern", "path": "$this"}], "rules": "open"},
            },
            {"id": "Consent.category:x", "path": "Consent.category", "sliceName": "x", "min": 0, "max": "1"},
        ],
        None,
    ),
]


@pytest.mark.parametrize(("case", "base", "elements", "element"), WIDENING, ids=[w[0] for w in WIDENING])
def test_a_differential_that_widens_cardinality_makes_the_structure_definition_an_error(
    case: str, base: str, elements: list[dict[str, Any]], element: str | None
) -> None:
    profile = sd("widening", "Consent", base, elements)
    issues = Validator(DefinitionSource(HELD)).check_structure_definition(profile)
    if element is None:
        assert issues == []
    else:
        assert [i.severity for i in issues] == ["error"]
        assert element in issues[0].diagnostics
        assert "cardinality" in issues[0].diagnostics
