"""Revocations: the revoked Consent's new version, the revocation's own Consent, and the checks (§3, §5)."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from fhir_server.ascmi.bundle import sequential_ids
from fhir_server.ascmi.mapping import form_to_bundle
from fhir_server.ascmi.revocation import revocation_to_bundle, select_by_form_id
from fhir_server.ascmi.stored import Stored
from fhir_server.fhir.outcome import Conflict, FHIRError, NotFound, Unprocessable
from tests.ascmi.conftest import FORMS, NOW, example

FORM = "https://ascmi.example.org/fhir/CodeSystem/ascmi-form"


def stored_form(name: str) -> tuple[Stored, Stored]:
    """The example form's Consent and Patient as a store would hold them (references resolved)."""
    bundle = form_to_bundle(example(name), now=NOW, new_id=sequential_ids(name))
    text = json.dumps(bundle)
    for n, entry in enumerate(bundle["entry"]):
        text = text.replace(entry["fullUrl"], f"{entry['resource']['resourceType']}/{name}-{n}")
    entries = json.loads(text)["entry"]
    consent = next(e["resource"] for e in entries if e["resource"]["resourceType"] == "Consent")
    patient = next(e["resource"] for e in entries if e["resource"]["resourceType"] == "Patient")
    return (
        Stored({**consent, "id": name, "meta": {**consent["meta"], "versionId": "4"}}, name, "4"),
        Stored({**patient, "id": f"{name}-0"}, f"{name}-0", "1"),
    )


def revoke(revocation: dict[str, Any], consent: Stored, patient: Stored) -> dict[str, Any]:
    return revocation_to_bundle(revocation, revoked=consent, patient=patient, now=NOW, new_id=sequential_ids("t"))


def entries(bundle: dict[str, Any], kind: str, method: str = "POST") -> list[dict[str, Any]]:
    return [e for e in bundle["entry"] if e["resource"]["resourceType"] == kind and e["request"]["method"] == method]


def test_the_revoked_consent_gets_an_inactive_version_ending_the_day_before_the_effective_date():
    consent, patient = stored_form("named-include-exclude")
    bundle = revoke(example("revoke-by-consent"), consent, patient)
    (put,) = entries(bundle, "Consent", "PUT")
    assert put["request"] == {"method": "PUT", "url": "Consent/named-include-exclude", "ifMatch": 'W/"4"'}
    assert put["resource"]["id"] == "named-include-exclude"
    assert put["resource"]["status"] == "inactive"
    assert put["resource"]["provision"]["period"] == {"start": "2025-04-12", "end": "2025-06-01"}
    assert put["resource"]["provision"]["provision"] == consent.resource["provision"]["provision"]


def test_the_revocation_update_has_a_provenance_with_reason_revocation_and_the_signature():
    consent, patient = stored_form("named-include-exclude")
    bundle = revoke(example("revoke-by-consent"), consent, patient)
    update = next(
        e["resource"]
        for e in entries(bundle, "Provenance")
        if e["resource"]["activity"]["coding"][0]["code"] == "UPDATE"
    )
    assert update["target"] == [{"reference": "Consent/named-include-exclude"}]
    assert update["reason"][0]["coding"] == [{"system": FORM, "code": "REVOCATION", "display": "ASCMI Revocation"}]
    assert update["occurredDateTime"] == "2025-06-02"
    assert update["signature"][0]["who"] == {"reference": "Patient/named-include-exclude-0"}


def test_the_revocation_is_a_consent_on_file_denying_every_category(terminology):
    consent, patient = stored_form("ab133-all-share")
    bundle = revoke(example("revoke-by-form-id"), consent, patient)
    (new,) = entries(bundle, "Consent")
    revocation = new["resource"]
    assert revocation["status"] == "active"
    assert [c["coding"][0]["code"] for c in revocation["category"]] == ["64292-6", "REVOCATION"]
    assert revocation["policyRule"]["coding"][0]["code"] == "REVOCATION"
    assert revocation["scope"]["coding"][0]["code"] == "patient-privacy"
    assert revocation["dateTime"] == "2025-05-30"
    assert revocation["patient"] == {"reference": "Patient/ab133-all-share-0"}
    assert revocation["performer"] == [{"reference": "Patient/ab133-all-share-0"}]
    assert revocation["organization"][0]["display"] == "Golden Poppy Health Plan"
    assert revocation["identifier"][0]["value"] == "GPHP-REV-2025-0012"
    assert revocation["provision"]["type"] == "deny"
    assert revocation["provision"]["period"] == {"start": "2025-06-01"}
    nested = revocation["provision"]["provision"]
    assert [p["type"] for p in nested] == ["deny"] * len(terminology.categories)
    document = entries(bundle, "DocumentReference")[0]
    assert revocation["sourceReference"] == {"reference": document["fullUrl"]}
    creation = next(
        e["resource"]
        for e in entries(bundle, "Provenance")
        if e["resource"]["activity"]["coding"][0]["code"] == "CREATE"
    )
    assert creation["target"] == [{"reference": new["fullUrl"]}]


def test_a_revocation_without_revocation_id_has_no_identifier():
    consent, patient = stored_form("named-include-exclude")
    revocation = entries(revoke(example("revoke-by-consent"), consent, patient), "Consent")[0]["resource"]
    assert "identifier" not in revocation


def test_a_revocation_effective_on_the_signed_date_does_not_end_the_form_before_it_starts():
    consent, patient = stored_form("named-include-exclude")
    revocation = example("revoke-by-consent") | {"effectiveDate": "2025-04-12", "signedDate": "2025-04-12"}
    revocation["signature"]["date"] = "2025-04-12"
    (put,) = entries(revoke(revocation, consent, patient), "Consent", "PUT")
    assert put["resource"]["provision"]["period"] == {"start": "2025-04-12", "end": "2025-04-12"}


@pytest.mark.parametrize("status", ["inactive", "entered-in-error"])
def test_revoking_a_form_no_longer_in_force_is_a_conflict(status):
    consent, patient = stored_form("named-include-exclude")
    gone = Stored({**consent.resource, "status": status}, consent.id, consent.version_id)
    with pytest.raises(Conflict) as caught:
        revoke(example("revoke-by-consent"), gone, patient)
    assert caught.value.status == 409 and caught.value.code == "conflict"


def test_naming_a_revocations_own_consent_is_unprocessable():
    consent, patient = stored_form("named-include-exclude")
    bundle = revoke(example("revoke-by-consent"), consent, patient)
    own = copy.deepcopy(entries(bundle, "Consent")[0]["resource"])
    with pytest.raises(Unprocessable) as caught:
        revoke(example("revoke-by-consent"), Stored(own, "rev", "1"), patient)
    assert caught.value.status == 422 and caught.value.expression == ("$.revokes",)


def test_revoking_a_consent_that_is_not_an_ascmi_form_is_unprocessable():
    _, patient = stored_form("named-include-exclude")
    other = Stored({"resourceType": "Consent", "status": "active", "dateTime": "2024-01-01"}, "x", "1")
    with pytest.raises(Unprocessable):
        revoke(example("revoke-by-consent"), other, patient)


def test_an_effective_date_before_the_revoked_forms_signed_date_is_unprocessable():
    consent, patient = stored_form("named-include-exclude")
    revocation = example("revoke-by-consent") | {"effectiveDate": "2025-04-11"}
    with pytest.raises(Unprocessable) as caught:
        revoke(revocation, consent, patient)
    assert caught.value.expression == ("$.effectiveDate",)


@pytest.mark.parametrize(
    "change",
    [
        {"mediCalId": "99999999Z"},
        {"familyName": "Tran"},
        {"birthDate": "1985-09-18", "mediCalId": None},
    ],
    ids=["another CIN", "same CIN other name is still the person", "another birth date without CIN"],
)
def test_an_individual_who_is_not_the_forms_person_is_unprocessable(change):
    consent, patient = stored_form("named-include-exclude")
    revocation = example("revoke-by-consent")
    revocation["individual"] = {k: v for k, v in (revocation["individual"] | change).items() if v is not None}
    if change == {"familyName": "Tran"}:  # the CIN decides when both sides have one
        revoke(revocation, consent, patient)
        return
    with pytest.raises(Unprocessable) as caught:
        revoke(revocation, consent, patient)
    assert caught.value.expression == ("$.individual",)


def test_names_match_case_and_accent_insensitively_without_a_cin():
    consent, patient = stored_form("non-ab133-mixed")
    revocation = example("revoke-by-consent") | {
        "individual": {"givenName": "DARNELL", "familyName": "okafor", "birthDate": "1991-06-05"}
    }
    revocation |= {"effectiveDate": "2025-06-02"}
    assert entries(revoke(revocation, consent, patient), "Consent", "PUT")


def test_a_form_id_nobody_has_is_not_found(terminology):
    with pytest.raises(NotFound) as caught:
        select_by_form_id("NOPE", [], example("revoke-by-form-id"), terminology=terminology)
    assert caught.value.status == 404


def test_a_form_id_shared_by_two_collectors_is_resolved_by_the_person(terminology):
    mine, my_patient = stored_form("ab133-all-share")
    theirs, their_patient = stored_form("minor-15")
    theirs.resource["identifier"][0]["value"] = "GPHP-2025-000183"
    found = select_by_form_id(
        "GPHP-2025-000183",
        [(theirs, their_patient.resource), (mine, my_patient.resource)],
        example("revoke-by-form-id"),
        terminology=terminology,
    )
    assert found[0] is mine


def test_the_example_revocation_bundles_are_consistent_with_their_forms():
    for name, target in (
        ("revoke-by-form-id", "Consent/ab133-all-share"),
        ("revoke-by-consent", "Consent/named-include-exclude"),
    ):
        bundle = json.loads((FORMS / f"{name}.bundle.json").read_text())
        (put,) = [e for e in bundle["entry"] if e["request"]["method"] == "PUT"]
        assert put["request"]["url"] == target and put["request"]["ifMatch"] == 'W/"1"'


def test_errors_are_fhir_errors_with_outcomes():
    consent, patient = stored_form("named-include-exclude")
    with pytest.raises(FHIRError) as caught:
        revoke(example("revoke-by-consent") | {"effectiveDate": "2020-01-01"}, consent, patient)
    assert caught.value.outcome()["issue"][0]["expression"] == ["$.effectiveDate"]
