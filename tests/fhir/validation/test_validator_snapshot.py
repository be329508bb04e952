"""Profiles without snapshots get one; broken or circular ones become issues, never exceptions."""

from __future__ import annotations

from typing import Any

import pytest

from fhir_server.fhir.validation import DefinitionSource, Validator
from fhir_server.fhir.validation.snapshot import generate_snapshot

from .samples import EX, HELD, TEST_CONSENT

CONSENT = "http://hl7.org/fhir/StructureDefinition/Consent"


def profile(name: str, base: str, elements: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {
        "resourceType": "StructureDefinition",
        "url": f"{EX}/StructureDefinition/{name}",
        "name": name,
        "kind": "resource",
        "abstract": False,
        "type": "Consent",
        "derivation": "constraint",
        "baseDefinition": base,
        "differential": {"element": elements},
        **extra,
    }


def test_generated_snapshot_holds_slices_after_their_base_element_and_nested_datatype_paths() -> None:
    elements = generate_snapshot(TEST_CONSENT, DefinitionSource(HELD), ())
    ids = [e["id"] for e in elements]
    assert ids.index("Consent.category:ascmi") > ids.index("Consent.category")
    assert "Consent.provision.actor.role.coding" in ids  # unfolded from CodeableConcept to hold the binding
    role = elements[ids.index("Consent.provision.actor.role")]
    assert role["binding"]["strength"] == "required"
    assert elements[ids.index("Consent.status")]["fixedCode"] == "active"


BROKEN = [
    ("unknown base", [profile("a", f"{EX}/StructureDefinition/missing", [])], "a", "not known"),
    (
        "path not in the base",
        [profile("b", CONSENT, [{"path": "Consent.colour", "min": 1}])],
        "b",
        "not in the base",
    ),
    (
        "circular base",
        [profile("c", f"{EX}/StructureDefinition/d", []), profile("d", f"{EX}/StructureDefinition/c", [])],
        "c",
        "loop",
    ),
    ("self base", [profile("e", f"{EX}/StructureDefinition/e", [])], "e", "loop"),
    (
        "slice on an element that is not sliced",
        [profile("f", CONSENT, [{"path": "Consent.category", "sliceName": "x"}])],
        "f",
        "not sliced",
    ),
    (
        "no differential and no base",
        [{"resourceType": "StructureDefinition", "url": f"{EX}/StructureDefinition/g", "type": "Consent"}],
        "g",
        "baseDefinition",
    ),
]


@pytest.mark.parametrize(("case", "held", "name", "words"), BROKEN, ids=[b[0] for b in BROKEN])
def test_unusable_structure_definition_becomes_a_processing_issue(
    case: str, held: list[dict[str, Any]], name: str, words: str
) -> None:
    validator = Validator(DefinitionSource(held))
    url = f"{EX}/StructureDefinition/{name}"
    issues = validator.validate({"resourceType": "Consent"}, [url])
    assert [i.code for i in issues if i.severity == "error"][:1] == ["processing"]
    assert words in issues[0].diagnostics
    assert validator.check_structure_definition(next(sd for sd in held if sd["url"] == url))


def test_valid_structure_definition_has_no_issues() -> None:
    assert Validator(DefinitionSource(HELD)).check_structure_definition(TEST_CONSENT) == []


def test_snapshot_present_in_the_profile_is_used_as_is() -> None:
    snapshot = generate_snapshot(TEST_CONSENT, DefinitionSource(HELD), ())
    with_snapshot = {
        **TEST_CONSENT,
        "url": f"{EX}/StructureDefinition/snap",
        "snapshot": {"element": snapshot},
        "differential": {"element": []},
    }
    validator = Validator(DefinitionSource([*HELD, with_snapshot]))
    issues = validator.validate({"resourceType": "Consent", "status": "draft"}, [with_snapshot["url"]])
    assert ("value", ("Consent.status",)) in [(i.code, i.expression) for i in issues]
