"""Our conformance resources are valid FHIR, the snapshots are fresh, and every resource the mapping writes
conforms to its profile."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from fhir.resources.R4B import get_fhir_model_class

from fhir_server.ascmi.terminology import conformance_resources
from tests.ascmi.conftest import FORMS, ROOT
from tests.ascmi.profile_check import check, check_extension

DEFINITIONS = Path(os.environ.get("FHIR_R4_DEFINITIONS", ROOT / "build/definitions/package/dist/fhir/r4"))
PROFILE_OF = {"Consent": "ASCMIConsent", "Patient": "ASCMIPatient", "Organization": "CarePartnerOrganization"}


def bundle_resources():
    for path in sorted(FORMS.glob("*.bundle.json")):
        for entry in json.loads(path.read_text())["entry"]:
            yield path.name, entry["resource"]


def extensions(node):
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "extension":
                yield from value
            yield from extensions(value)
    elif isinstance(node, list):
        for item in node:
            yield from extensions(item)


@pytest.mark.parametrize("resource", conformance_resources(), ids=lambda r: f"{r['resourceType']}/{r['id']}")
def test_every_conformance_resource_validates_with_fhir_resources(resource):
    get_fhir_model_class(resource["resourceType"]).model_validate(resource)


@pytest.mark.skipif(not DEFINITIONS.exists(), reason="base R4 definitions not unpacked: run `make definitions`")
def test_the_committed_snapshots_are_what_the_script_generates():
    script = ROOT / "scripts" / "generate_profile_snapshots.py"
    result = subprocess.run([sys.executable, str(script), "--definitions", str(DEFINITIONS), "--check"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_every_differential_element_is_in_the_snapshot():
    for path in (ROOT / "profiles").glob("StructureDefinition-*.json"):
        sd = json.loads(path.read_text())
        ids = {e["id"] for e in sd["snapshot"]["element"]}
        assert {e["id"] for e in sd["differential"]["element"]} <= ids, path.name


@pytest.mark.parametrize(
    ("bundle", "resource"),
    [(b, r) for b, r in bundle_resources() if r["resourceType"] in PROFILE_OF],
    ids=lambda x: x if isinstance(x, str) else x["resourceType"],
)
def test_every_mapped_resource_conforms_to_its_profile(bundle, resource):
    profile = PROFILE_OF[resource["resourceType"]]
    assert resource["meta"]["profile"] == [f"https://ascmi.example.org/fhir/StructureDefinition/{profile}"]
    assert check(resource, profile) == []


def test_every_extension_the_mapping_writes_conforms_to_its_definition():
    seen = set()
    for _, resource in bundle_resources():
        for extension in extensions(resource):
            assert check_extension(extension) == [], extension
            seen.add(extension["url"].rsplit("/", 1)[1])
    assert seen == {
        "covered-entity",
        "ascmi-expiration-event",
        "ascmi-minor-signature",
        "representative-authority",
        "ascmi-signature-method",
    }


BROKEN = [
    ("a scope other than patient-privacy", ["scope", "coding", 0, "code"], "research"),
    ("a root provision that permits", ["provision", "type"], "permit"),
    ("a policyRule outside ascmi-form", ["policyRule", "coding", 0, "code"], "HIPAA-Auth"),
    ("an actor role other than IRCP", ["provision", "provision", 0, "actor", 0, "role", "coding", 0, "code"], "PRCP"),
]


@pytest.mark.parametrize(("what", "path", "value"), BROKEN, ids=[b[0] for b in BROKEN])
def test_the_checker_catches_a_consent_that_breaks_the_profile(what, path, value):
    consent = next(
        r for b, r in bundle_resources() if b == "ab133-all-share.bundle.json" and r["resourceType"] == "Consent"
    )
    node = consent
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    assert check(consent, "ASCMIConsent"), what


def test_the_checker_catches_missing_categories_and_a_second_provision_level():
    consent = next(
        r for b, r in bundle_resources() if b == "share-nothing.bundle.json" and r["resourceType"] == "Consent"
    )
    consent["category"] = consent["category"][:1]
    consent["provision"]["provision"][0]["provision"] = [{"type": "permit"}]
    problems = check(consent, "ASCMIConsent")
    assert any("Consent.category" in p for p in problems)
    assert any("Consent.provision.provision.provision" in p for p in problems)


def test_every_mapped_resource_passes_the_servers_validator_with_our_profiles_held():
    from fhir_server.fhir.validation.definitions import DefinitionSource
    from fhir_server.fhir.validation.validator import Validator

    validator = Validator(DefinitionSource(conformance_resources()))
    for bundle, resource in bundle_resources():
        errors = [i for i in validator.validate(resource, meta_profiles=True) if i.severity in ("error", "fatal")]
        assert errors == [], (bundle, resource["resourceType"], errors)
