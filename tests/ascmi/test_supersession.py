"""Supersession by signed date, whatever the arrival order (ASCMI.md §3, §5)."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from fhir_server.ascmi.mapping import form_to_bundle, produced_consent_index
from fhir_server.ascmi.stored import Stored
from fhir_server.ascmi.supersession import plan
from tests.ascmi.conftest import NOW, example

FORM = "https://ascmi.example.org/fhir/CodeSystem/ascmi-form"


def on_file(
    cid: str,
    signed: str,
    *,
    status: str = "active",
    start: str | None = None,
    end: str | None = None,
    kind: str = "AB133",
    version: str = "2",
) -> Stored:
    period = {"start": start or signed, **({"end": end} if end else {})}
    resource = {
        "resourceType": "Consent",
        "id": cid,
        "meta": {"versionId": version, "lastUpdated": "2025-01-01T00:00:00Z"},
        "status": status,
        "dateTime": signed,
        "policyRule": {"coding": [{"system": FORM, "code": kind}]},
        "provision": {"type": "deny", "period": period},
    }
    return Stored(resource, cid, version)


def intake(signed: str, existing: list[Stored]) -> dict[str, Any]:
    form = example("non-ab133-mixed") | {"signedDate": signed}
    form["signature"]["date"] = signed
    return form_to_bundle(form, now=NOW, existing_consents=existing)


def puts(bundle: dict[str, Any]) -> list[dict[str, Any]]:
    return [e for e in bundle["entry"] if e["request"]["method"] == "PUT"]


def test_a_newer_form_sets_the_one_in_force_inactive_until_the_day_before(terminology):
    bundle = intake("2025-03-14", [on_file("old", "2024-10-01")])
    (entry,) = puts(bundle)
    assert entry["request"] == {"method": "PUT", "url": "Consent/old", "ifMatch": 'W/"2"'}
    assert entry["resource"]["status"] == "inactive"
    assert entry["resource"]["provision"]["period"] == {"start": "2024-10-01", "end": "2025-03-13"}
    assert "versionId" not in entry["resource"].get("meta", {})
    why = bundle["entry"][-1]["resource"]
    assert why["resourceType"] == "Provenance" and why["target"] == [{"reference": "Consent/old"}]
    assert why["activity"]["coding"][0]["code"] == "UPDATE"
    assert why["reason"][0]["coding"][0]["code"] == "NON-AB133"
    assert why["entity"][0]["what"]["reference"] == bundle["entry"][produced_consent_index(bundle)]["fullUrl"]
    assert bundle["entry"][produced_consent_index(bundle)]["resource"]["status"] == "active"


def test_a_form_signed_before_the_one_in_force_is_stored_inactive_and_supersedes_nothing():
    bundle = intake("2025-03-14", [on_file("newer", "2025-05-01"), on_file("newest", "2025-05-20")])
    consent = bundle["entry"][produced_consent_index(bundle)]["resource"]
    assert consent["status"] == "inactive"
    assert consent["provision"]["period"] == {"start": "2025-03-14", "end": "2025-04-30"}
    assert puts(bundle) == []


def test_the_new_form_closes_the_older_and_is_closed_by_the_newer_one_on_file():
    bundle = intake("2025-03-14", [on_file("older", "2025-01-01"), on_file("newer", "2025-05-01")])
    assert [e["request"]["url"] for e in puts(bundle)] == ["Consent/older"]
    assert bundle["entry"][produced_consent_index(bundle)]["resource"]["status"] == "inactive"


def test_on_the_same_signed_date_the_form_recorded_last_wins_and_no_period_ends_before_it_starts():
    (entry,) = puts(intake("2025-03-14", [on_file("same-day", "2025-03-14")]))
    assert entry["resource"]["provision"]["period"] == {"start": "2025-03-14", "end": "2025-03-14"}


def test_an_earlier_expiry_is_kept_when_superseded():
    (entry,) = puts(intake("2025-03-14", [on_file("expired", "2024-01-01", end="2024-12-31")]))
    assert entry["resource"]["provision"]["period"]["end"] == "2024-12-31"


def test_a_newer_form_also_supersedes_a_revocation_on_file():
    (entry,) = puts(intake("2025-03-14", [on_file("rev", "2025-02-01", start="2025-02-03", kind="REVOCATION")]))
    assert entry["resource"]["provision"]["period"] == {"start": "2025-02-03", "end": "2025-03-13"}


@pytest.mark.parametrize(
    "stored",
    [
        on_file("entered", "2024-01-01", status="entered-in-error"),
        on_file("open-inactive", "2024-01-01", status="inactive"),
        on_file("revoked", "2024-01-01", status="inactive", end="2024-06-30"),
    ],
    ids=["entered-in-error", "inactive-without-end", "already-inactive"],
)
def test_consents_that_are_not_in_force_are_left_alone(stored):
    assert puts(intake("2025-03-14", [stored])) == []


def test_a_consent_that_is_not_an_ascmi_form_is_ignored(terminology):
    other = Stored(
        {
            "resourceType": "Consent",
            "status": "active",
            "dateTime": "2024-01-01",
            "policyRule": {"coding": [{"system": "http://example.org", "code": "x"}]},
        },
        "x",
        "1",
    )
    decision = plan(date(2025, 3, 14), [other], terminology=terminology)
    assert decision.superseded == () and decision.newer is None


def test_inactive_consents_with_an_end_still_make_an_older_form_inactive(terminology):
    revoked = on_file("revoked", "2025-05-01", status="inactive", end="2025-05-31")
    decision = plan(date(2025, 3, 14), [revoked], terminology=terminology)
    assert decision.superseded == () and decision.newer is revoked
