"""``POST /fhir/Consent/$decide`` as a table: categories × purposes × recipient kinds × form types × revocation and
supersession timing × minors × named exclusions × past-time queries (ASCMI.md §4–§5).

The population is in :mod:`tests.decision_http.world` (filed through ``/ascmi/forms`` and
``/ascmi/revocations``). ``T`` is explicit in all but a few rows so the table does not age.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from tests.decision_http.world import CIN, RECIPIENTS, World, cin, decide_parameters, outputs

pytestmark = pytest.mark.asyncio(loop_scope="module")

T = "2026-01-15"
NORDSCLCD = "NORDSCLCD"
PART2 = ("42CFRPart2", "NORDSCLCD")


@dataclass(frozen=True)
class Case:
    id: str
    patient: str  # person key of the world ("Z": never seen)
    recipient: str  # key of RECIPIENTS
    purpose: str
    labels: tuple[str, ...]
    time: str | None
    decision: str
    basis: str
    on_file: bool
    consent: str | None  # filing key of the governing Consent
    obligations: tuple[str, ...] = ()
    label_decisions: tuple[tuple[str, str], ...] | None = None  # default: every label gets ``decision``


def c(id: str, patient: str, recipient: str, purpose: str, labels: tuple[str, ...] | str, time: str | None,
      decision: str, basis: str, on_file: bool, consent: str | None, obligations: tuple[str, ...] = (),
      label_decisions: tuple[tuple[str, str], ...] | None = None) -> Case:
    labels = (labels,) if isinstance(labels, str) else labels
    return Case(id, patient, recipient, purpose, labels, time, decision, basis, on_file, consent, obligations,
                label_decisions)


P, D = "permit", "deny"
CASES = [
    # --- A: NON-AB133, shares most sensitive categories with all Care Partners for TREAT/COC/CAREMGT/social ---
    c("a-general-covered-provider-floor", "A", "CLINIC", "TREAT", (), T, P, "legal-floor", True, "A-1"),
    c("a-general-non-covered-cbo-by-consent", "A", "CBO", "TREAT", (), T, P, "consent", True, "A-1"),
    c("a-general-cbo-purpose-not-on-form", "A", "CBO", "HPAYMT", (), T, D, "consent", True, "A-1"),
    c("a-general-normal-label-explicit", "A", "CBO", "COC", "N", T, P, "consent", True, "A-1"),
    c("a-mh-plan-payment-not-on-non-ab133-floor", "A", "PLAN", "HPAYMT", "MH", T, D, "consent", True, "A-1"),
    c("a-mh-plan-caremgt-on-floor", "A", "PLAN", "CAREMGT", "MH", T, P, "legal-floor", True, "A-1", (NORDSCLCD,)),
    c("a-bh-cbo-coc-by-consent", "A", "CBO", "COC", "BH", T, P, "consent", True, "A-1", (NORDSCLCD,)),
    c("a-part2-with-sud-cbo", "A", "CBO", "TREAT", ("42CFRPart2", "SUD"), T, P, "consent", True, "A-1", PART2),
    c("a-part2-never-on-floor-clinic-by-consent", "A", "CLINIC", "TREAT", "42CFRPart2", T, P, "consent", True,
      "A-1", PART2),
    c("a-sud-do-not-share-beats-floor", "A", "CLINIC", "TREAT", "SUD", T, D, "consent", True, "A-1"),
    c("a-eth-alone-is-substance-use", "A", "CBO", "TREAT", "ETH", T, D, "consent", True, "A-1"),
    c("a-hiv-provider-treat-floor", "A", "CLINIC", "TREAT", "HIV", T, P, "legal-floor", True, "A-1", (NORDSCLCD,)),
    c("a-hiv-plan-treat-not-floor-consent", "A", "PLAN", "TREAT", "HIV", T, P, "consent", True, "A-1",
      (NORDSCLCD,)),
    c("a-hiv-plan-payment", "A", "PLAN", "HPAYMT", "HIV", T, D, "consent", True, "A-1"),
    c("a-sex-out-of-state-member-by-consent", "A", "NV", "TREAT", "SEX", T, P, "consent", True, "A-1"),
    c("a-gender-out-of-network-covered-floor", "A", "OUTSIDER", "TREAT", "GENDER", T, P, "legal-floor", True,
      "A-1"),
    c("a-social-out-of-network-denied", "A", "OUTSIDER", "social-services", "social-services", T, D, "consent",
      True, "A-1"),
    c("a-social-cbo-member", "A", "CBO", "social-services", "social-services", T, P, "consent", True, "A-1"),
    c("a-social-lapsed-member-before-end", "A", "LAPSED", "social-services", "social-services", "2025-05-01", P,
      "consent", True, "A-1"),
    c("a-social-lapsed-member-after-end", "A", "LAPSED", "social-services", "social-services", "2025-08-01", D,
      "consent", True, "A-1"),
    c("a-social-inactive-affiliation", "A", "INACTIVE", "social-services", "social-services", T, D, "consent",
      True, "A-1"),
    c("a-ipv-do-not-share-beats-floor", "A", "CLINIC", "TREAT", "SDV", T, D, "consent", True, "A-1"),
    c("a-developmental-left-out", "A", "CBO", "TREAT", "DVD", T, D, "consent", True, "A-1"),
    c("a-education-left-out", "A", "CBO", "TREAT", "education", T, D, "consent", True, "A-1"),
    c("a-mixed-first-denied-label-decides", "A", "CLINIC", "TREAT", ("N", "MH", "SUD"), T, D, "consent", True,
      "A-1", label_decisions=(("N", P), ("MH", P), ("SUD", D))),
    c("a-mixed-all-permitted-obligations", "A", "CBO", "TREAT", ("MH", "HIV", "42CFRPart2"), T, P, "consent",
      True, "A-1", PART2),
    c("a-mixed-floor-and-consent-basis-consent", "A", "CLINIC", "TREAT", ("N", "social-services"), T, P,
      "consent", True, "A-1"),
    c("a-psythpn-never", "A", "CLINIC", "TREAT", ("PSYTHPN", "N"), T, D, "never", True, "A-1",
      label_decisions=(("PSYTHPN", D), ("N", P))),
    c("a-unknown-recipient-not-member", "A", "UNKNOWN", "TREAT", (), T, D, "consent", True, "A-1"),
    c("a-several-recipient-identifiers-any-match", "A", "CBO+UNKNOWN", "TREAT", (), T, P, "consent", True, "A-1"),
    c("a-recipient-by-second-identifier", "A", "PLAN-BY-EIN", "TREAT", "HIV", T, P, "consent", True, "A-1",
      (NORDSCLCD,)),
    c("a-before-signed-no-consent-floor", "A", "CLINIC", "TREAT", (), "2025-01-31", P, "legal-floor", False, None),
    c("a-before-signed-no-consent-cbo", "A", "CBO", "TREAT", (), "2025-01-31", D, "no-consent", False, None),
    c("a-default-time-is-now", "A", "CBO", "TREAT", (), None, P, "consent", True, "A-1"),
    # --- B: AB133, TREAT only: the AB 133 floor covers payment for MH and HIV ---
    c("b-mh-plan-payment-ab133-floor", "B", "PLAN", "HPAYMT", "MH", T, P, "legal-floor", True, "B-1", (NORDSCLCD,)),
    c("b-hiv-plan-payment-ab133-floor", "B", "PLAN", "HPAYMT", "HIV", T, P, "legal-floor", True, "B-1",
      (NORDSCLCD,)),
    c("b-hiv-non-covered-payment", "B", "CBO", "HPAYMT", "HIV", T, D, "consent", True, "B-1"),
    c("b-mh-cbo-treat-by-consent", "B", "CBO", "TREAT", "PSY", T, P, "consent", True, "B-1", (NORDSCLCD,)),
    c("b-social-do-not-share", "B", "CBO", "social-services", "social-services", T, D, "consent", True, "B-1"),
    c("b-sti-left-out-beats-floor", "B", "CLINIC", "TREAT", "STD", T, D, "consent", True, "B-1"),
    c("b-part2-never-on-floor", "B", "CLINIC", "HOPERAT", "42CFRPart2", T, D, "consent", True, "B-1"),
    # --- D: a form that shares nothing is a choice on file ---
    c("d-share-nothing-beats-floor", "D", "CLINIC", "TREAT", (), T, D, "consent", True, "D-1"),
    c("d-before-form-no-consent", "D", "CLINIC", "TREAT", (), "2025-03-31", P, "legal-floor", False, None),
    # --- E: revoked, effective 2025-09-01 ---
    c("e-before-revocation-old-consent", "E", "CBO", "social-services", "social-services", "2025-06-01", P,
      "consent", True, "E-1"),
    c("e-day-before-effective", "E", "CBO", "social-services", "social-services", "2025-08-31", P, "consent", True,
      "E-1"),
    c("e-on-effective-date-revocation", "E", "CBO", "social-services", "social-services", "2025-09-01", D,
      "consent", True, "E-rev"),
    c("e-revocation-beats-floor", "E", "CLINIC", "TREAT", (), T, D, "consent", True, "E-rev"),
    c("e-past-time-floor-under-old-consent", "E", "CLINIC", "TREAT", (), "2025-06-01", P, "legal-floor", True,
      "E-1"),
    c("e-utc-instant-is-previous-local-day", "E", "CBO", "social-services", "social-services",
      "2025-09-01T06:00:00Z", P, "consent", True, "E-1"),
    c("e-naive-datetime-read-in-server-zone", "E", "CBO", "social-services", "social-services",
      "2025-09-01T00:30:00", D, "consent", True, "E-rev"),
    # --- F: superseded (the newer form arrived first) ---
    c("f-old-form-governs-its-days", "F", "CBO", "social-services", "social-services", "2025-03-01", P, "consent",
      True, "F-1"),
    c("f-old-form-last-day", "F", "CBO", "social-services", "social-services", "2025-06-30", P, "consent", True,
      "F-1"),
    c("f-new-form-governs", "F", "CBO", "social-services", "social-services", "2025-08-01", D, "consent", True,
      "F-2"),
    c("f-new-form-general", "F", "CBO", "TREAT", (), "2025-08-01", P, "consent", True, "F-2"),
    # --- G: 15-year-old, AB133 signed by a parent, the minor signed for MH and STI (not SEX) ---
    c("g-minor-signed-mh", "G", "CBO", "TREAT", "MH", "2025-10-01", P, "consent", True, "G-1", (NORDSCLCD,)),
    c("g-minor-signed-sti", "G", "CBO", "COC", "STD", "2025-10-01", P, "consent", True, "G-1"),
    c("g-minor-unsigned-sex", "G", "CBO", "TREAT", "SEX", "2025-10-01", D, "consent", True, "G-1"),
    c("g-minor-floor-unaffected", "G", "CLINIC", "TREAT", "SEX", "2025-10-01", P, "legal-floor", True, "G-1"),
    c("g-adult-parent-signature-counts", "G", "CBO", "TREAT", "SEX", "2028-07-01", P, "consent", True, "G-1"),
    c("g-minor-general-not-minor-category", "G", "CBO", "TREAT", (), "2025-10-01", P, "consent", True, "G-1"),
    c("g-minor-mixed-redacts-nothing-in-decide", "G", "CBO", "TREAT", ("MH", "SEX"), "2025-10-01", D, "consent",
      True, "G-1", label_decisions=(("MH", P), ("SEX", D))),
    # --- H: 15-year-old, NON-AB133 signed by a parent only ---
    c("h-minor-without-signature-mh", "H", "CBO", "TREAT", "MH", "2025-12-01", D, "consent", True, "H-1"),
    c("h-minor-without-signature-sti", "H", "CBO", "TREAT", "STD", "2025-12-01", D, "consent", True, "H-1"),
    c("h-minor-general", "H", "CBO", "TREAT", (), "2025-12-01", P, "consent", True, "H-1"),
    c("h-minor-mh-floor", "H", "CLINIC", "TREAT", "MH", "2025-12-01", P, "legal-floor", True, "H-1", (NORDSCLCD,)),
    c("h-sti-plan-payment-floor", "H", "PLAN", "HPAYMT", "STD", "2025-12-01", P, "legal-floor", True, "H-1"),
    # --- I: named recipients only (NAMED), PART2 excluded ---
    c("i-part2-named-recipient", "I", "NAMED", "TREAT", "42CFRPart2", T, P, "consent", True, "I-1", PART2),
    c("i-member-not-named", "I", "CBO", "TREAT", (), T, D, "consent", True, "I-1"),
    c("i-covered-not-named-floor", "I", "CLINIC", "TREAT", (), T, P, "legal-floor", True, "I-1"),
    c("i-excluded-beats-floor", "I", "PART2", "TREAT", (), T, D, "consent", True, "I-1"),
    c("i-part2-covered-not-named", "I", "CLINIC", "TREAT", "42CFRPart2", T, D, "consent", True, "I-1"),
    # --- J: all Care Partners but PLAN ---
    c("j-excluded-member", "J", "PLAN", "HPAYMT", (), T, D, "consent", True, "J-1"),
    c("j-excluded-any-category", "J", "PLAN", "TREAT", "MH", T, D, "consent", True, "J-1"),
    c("j-other-covered-floor", "J", "CLINIC", "HPAYMT", (), T, P, "legal-floor", True, "J-1"),
    c("j-social-cbo", "J", "CBO", "social-services", "social-services", T, P, "consent", True, "J-1"),
    # --- K: expired 2025-06-01 (inclusive) ---
    c("k-last-day", "K", "CBO", "social-services", "social-services", "2025-06-01", P, "consent", True, "K-1"),
    c("k-expired-cbo", "K", "CBO", "social-services", "social-services", "2025-06-02", D, "no-consent", False,
      None),
    c("k-expired-general-floor", "K", "CLINIC", "TREAT", (), "2025-06-02", P, "legal-floor", False, None),
    c("k-expired-sex-out-of-state", "K", "NV", "TREAT", "SEX", "2025-06-02", D, "no-consent", False, None),
    c("k-expired-sex-in-state", "K", "CLINIC", "TREAT", "SEX", "2025-06-02", P, "legal-floor", False, None),
    c("k-expired-hiv-provider", "K", "CLINIC", "TREAT", "HIV", "2025-06-02", P, "legal-floor", False, None,
      (NORDSCLCD,)),
    c("k-expired-hiv-plan", "K", "PLAN", "TREAT", "HIV", "2025-06-02", D, "no-consent", False, None),
    c("k-expired-mh-payment", "K", "PLAN", "HPAYMT", "MH", "2025-06-02", D, "no-consent", False, None),
    c("k-expired-social-purpose-never-floor", "K", "CLINIC", "social-services", (), "2025-06-02", D, "no-consent",
      False, None),
    c("k-expired-gender-out-of-state", "K", "NV", "HOPERAT", "GENDER", "2025-06-02", D, "no-consent", False, None),
    # --- L: event-based expiration stays open ---
    c("l-event-expiration-open", "L", "CBO", "social-services", "social-services", "2030-01-01", P, "consent",
      True, "L-1"),
    # --- Z: a patient the server has never seen ---
    c("z-unknown-patient-floor", "Z", "CLINIC", "TREAT", (), T, P, "legal-floor", False, None),
    c("z-unknown-patient-cbo", "Z", "CBO", "TREAT", (), T, D, "no-consent", False, None),
    c("z-unknown-patient-psythpn", "Z", "CLINIC", "TREAT", "PSYTHPN", T, D, "never", False, None),
    c("z-unknown-patient-unknown-recipient", "Z", "UNKNOWN", "TREAT", "MH", T, D, "no-consent", False, None),
]


async def test_the_table_is_large_and_ids_unique() -> None:
    assert len(CASES) >= 60
    assert len({case.id for case in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
async def test_decide(world: World, case: Case) -> None:
    body = decide_parameters([(CIN, cin(case.patient))], RECIPIENTS[case.recipient], case.purpose, case.labels,
                             case.time)
    r = await world.client.post("/fhir/Consent/$decide", json=body)
    assert r.status_code == 200, r.text
    out = outputs(r.json())
    reasons = "\n".join(out.get("reason", []))
    assert (out["decision"], out["basis"], out["consentOnFile"]) == (
        [case.decision], [case.basis], [case.on_file]), reasons
    assert out.get("consent", []) == ([{"reference": world.versions[case.consent]}] if case.consent else []), reasons
    expected_labels = case.label_decisions or tuple((code, case.decision) for code in case.labels or ("N",))
    assert tuple(out["label-decision"]) == expected_labels, reasons
    assert sorted(o["code"] for o in out.get("obligation", [])) == sorted(case.obligations), reasons
    assert reasons


async def test_several_patient_identifiers_name_one_person(world: World) -> None:
    body = decide_parameters([("urn:other:mrn", "no-such-mrn"), (CIN, cin("A"))], RECIPIENTS["CBO"], "TREAT",
                             (), T)
    r = await world.client.post("/fhir/Consent/$decide", json=body)
    out = outputs(r.json())
    assert (out["decision"], out["consentOnFile"]) == (["permit"], [True])
    assert out["consent"] == [{"reference": world.versions["A-1"]}]


async def test_revoked_consent_is_referenced_by_its_inactive_version(world: World) -> None:
    r = await world.client.get(f"/fhir/Consent/{world.consents['E-1']}")
    revoked = r.json()
    assert revoked["status"] == "inactive" and revoked["provision"]["period"]["end"] == "2025-08-31"
    assert world.versions["E-1"].endswith(f"/_history/{revoked['meta']['versionId']}")
    assert revoked["meta"]["versionId"] != "1"
