"""The rule book as a table (cases.py): every row decided by the pure engine, no store, no HTTP."""

from __future__ import annotations

from datetime import UTC, date

import pytest

from fhir_server.consent.clock import parse_datetime
from fhir_server.consent.decide import decide
from fhir_server.consent.model import Coding, DecisionRequest, Identifier
from fhir_server.consent.tables import load_tables
from tests.consent.builder import BASE, purpose_coding
from tests.consent.cases import ALL_CASES, Case, L

PATIENT = (Identifier(f"{BASE}/sid/medi-cal-cin", "91234567A"),)


def run(case: Case):
    p = purpose_coding(case.purpose)
    request = DecisionRequest(
        PATIENT,
        case.recipient.identifiers,
        Coding(p["system"], p["code"]),
        tuple(L(x) for x in case.labels),
        parse_datetime(case.time),
    )
    return decide(request, case.consents, case.recipient, case.birth, case.settings)


def test_the_table_has_at_least_sixty_rows_with_unique_sentences():
    assert len(ALL_CASES) >= 60
    assert len({c.id for c in ALL_CASES}) == len(ALL_CASES)


@pytest.mark.parametrize("case", ALL_CASES, ids=[c.id for c in ALL_CASES])
def test_decision_follows_the_rule_book(case: Case):
    d = run(case)
    assert (d.decision, d.basis, d.consent_on_file) == case.expect, [r.text for r in d.reasons]
    if case.governing is not None:
        assert d.consent is not None and d.consent.id == case.governing
    if not d.consent_on_file:
        assert d.consent is None
    if case.label_decisions is not None:
        assert tuple(f"{ld.label.code}={ld.decision}" for ld in d.label_decisions) == case.label_decisions
    if case.obligations is not None:
        assert tuple(o.code for o in d.obligations) == case.obligations
    if d.decision == "deny":
        assert d.obligations == ()
    assert d.reasons and all(r.text for r in d.reasons)


@pytest.mark.parametrize("case", ALL_CASES, ids=[c.id for c in ALL_CASES])
def test_every_category_reason_names_its_rule_and_what_it_rests_on(case: Case):
    d = run(case)
    assert d.reasons[0].rule == 2
    for r in d.reasons:
        assert r.text.startswith(f"Rule {r.rule}:")
        if r.rule == 4:
            assert r.consent and r.consent in r.text
        if r.rule == 3 and r.floor_row:
            assert f"'{r.floor_row}'" in r.text


def test_one_label_decision_per_requested_label_in_request_order():
    case = next(c for c in ALL_CASES if c.id == "sud_with_42cfrpart2_is_part2_and_not_on_the_floor")
    d = run(case)
    assert [ld.label.code for ld in d.label_decisions] == ["SUD", "42CFRPart2"]
    assert {ld.category for ld in d.label_decisions} == {"substance-use-part2"}


def test_no_label_is_decided_as_general_health_with_label_n():
    case = next(c for c in ALL_CASES if c.id.startswith("general_health_for_treatment_to_a_covered"))
    d = run(case)
    assert [(ld.label.system, ld.label.code) for ld in d.label_decisions] == [
        ("http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "N")
    ]


def test_a_permit_by_consent_reason_cites_the_consent_version_and_provision():
    case = next(c for c in ALL_CASES if c.id.startswith("part2_to_a_cbo_in_the_network"))
    d = run(case)
    texts = " ".join(r.text for r in d.reasons)
    assert "Consent/all/_history/1" in texts
    assert "Consent.provision.provision[2]" in texts  # Part 2 is the third shared category


def test_a_denial_on_the_floor_cites_the_row_and_its_authority():
    case = next(c for c in ALL_CASES if c.id == "hiv_for_treatment_to_a_health_plan_is_not_on_the_floor")
    d = run(case)
    floor = [r for r in d.reasons if r.rule == 3]
    assert floor[0].floor_row == "hiv-non-ab133" and "H&S §120985" in floor[0].text


def test_the_canonical_base_moves_every_local_url():
    t = load_tables("https://other.example/fhir/")
    assert t.category_system == "https://other.example/fhir/CodeSystem/ascmi-category"
    assert (
        t.categories["education"].labels[0].system == "https://other.example/fhir/CodeSystem/ascmi-category"
    )
    assert t.network_identifier == ("https://other.example/fhir/sid/care-partner-network", "ascmi")
    assert t.purpose_of(("https://other.example/fhir/CodeSystem/ascmi-purpose", "social-services"))


def test_time_defaults_to_today_in_the_server_zone():
    from datetime import datetime

    case = ALL_CASES[0]
    p = purpose_coding("TREAT")
    request = DecisionRequest(PATIENT, case.recipient.identifiers, Coding(p["system"], p["code"]))
    now = datetime(2025, 3, 2, 5, 0, tzinfo=UTC)  # still 1 March in Los Angeles
    d = decide(request, (), case.recipient, None, now=now)
    assert d.date == date(2025, 3, 1)
