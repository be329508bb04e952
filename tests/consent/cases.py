"""The decision table: each row is one question to the engine and the answer ASCMI.md §4/§5 requires.

Rows are grouped by what they exercise; ids are sentences so a failure reads as the rule that broke.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from fhir_server.consent.model import Coding, ConsentVersion, DecisionSettings, RecipientFacts
from tests.consent.builder import BASE, CATEGORIES, form, party, revocation, revoked

ACT = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
CONF = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"
ADULT = date(1980, 5, 5)
MINOR = date(2010, 6, 1)  # 14 in 2025
T = "2025-03-01"


def L(code: str) -> Coding:  # noqa: N802 - reads like the label it builds
    if code == "N":
        return Coding(CONF, "N")
    if code in ("social-services", "education"):
        return Coding(f"{BASE}/CodeSystem/ascmi-category", code)
    return Coding(ACT, code)


@dataclass(frozen=True)
class Case:
    id: str
    consents: tuple[ConsentVersion, ...]
    recipient: RecipientFacts
    purpose: str
    labels: tuple[str, ...]
    expect: tuple[str, str, bool]  # decision, basis, consentOnFile
    time: str = T
    birth: date | None = ADULT
    settings: DecisionSettings = field(default_factory=DecisionSettings)
    governing: str | None = None  # expected governing Consent id
    label_decisions: tuple[str, ...] | None = None
    obligations: tuple[str, ...] | None = None


PROVIDER = party("clinic")
PLAN = party("plan", type="health-plan")
CBO = party("cbo", covered=False, type="cbo")
OUT_OF_STATE = party("nv-clinic", state="NV")
NON_MEMBER = party("outsider", member=None)
UNKNOWN = party(None)
EXCLUDED = party("excluded-clinic")
LEFT_NETWORK = party("gone", covered=False, type="cbo", member=("2024-01-01", "2025-02-01"))
LEAVES_LATER = party("later", covered=False, type="cbo", member=("2024-01-01", "2025-06-30"))
INACTIVE_MEMBER = party("paused", covered=False, type="cbo", member_active=False)
INCLUDED = party("clinic-a", covered=False, type="cbo")
BY_NPI = party(None, npi="2222222222")

ALL = form(id="all")
NONE = form(id="none", share=())
MIXED = form(
    id="mixed",
    share=("general-health", "substance-use", "social-services"),
    exclude=("Organization/excluded-clinic",),
)
PART2_NOT_SUD = form(id="p2", share=("substance-use-part2",))
PART2_TREAT_ONLY = form(id="p2treat", share=("substance-use-part2",), purposes=("TREAT",))
ONLY_A_NON = form(id="only-a", share=CATEGORIES, include=("Organization/clinic-a",))
ONLY_A_AB133 = form(id="only-a-133", form_type="AB133", share=CATEGORIES, include=("Organization/clinic-a",))
BY_IDENTIFIER = form(id="by-npi", share=("substance-use-part2",), include=("npi:2222222222",))

REVOKED = revoked(form(id="rev-orig"), end="2025-05-31")
REVOCATION = revocation(id="revocation", signed="2025-06-01")
OLD = revoked(form(id="old", signed="2024-06-01", expires="2025-06-01"), end="2025-02-28")
NEWER = form(id="newer", signed="2025-03-01", share=("general-health",))
TIE_FIRST = form(id="tie-first", share=(), recorded=1_000_001)
TIE_LAST = form(id="tie-last", recorded=1_000_002)
EVENT_OPEN = form(id="event", expires=None, event="end-of-services")
EVENT_RECORDED = form(id="event-done", expires=None, event="end-of-services", period_end="2025-08-01")
INACTIVE_NO_END = form(id="inactive", status="inactive", expires=None)
IN_ERROR = form(id="error", status="entered-in-error")
MINOR_UNSIGNED = form(id="minor-unsigned")
MINOR_SIGNED = form(id="minor-signed", minor_signed=("mental-health", "reproductive-health"))


def _not_ascmi(c: ConsentVersion) -> ConsentVersion:
    res = {k: v for k, v in c.resource.items() if k != "policyRule"}
    res["category"] = res["category"][:1]
    return ConsentVersion.from_resource(res, recorded=c.recorded)


HONOR_OFF = DecisionSettings(honor_do_not_share_on_floor=False)
PERMIT_FLOOR = ("permit", "legal-floor", False)
PERMIT_FLOOR_ON_FILE = ("permit", "legal-floor", True)
PERMIT_CONSENT = ("permit", "consent", True)
DENY_CONSENT = ("deny", "consent", True)
DENY_NONE = ("deny", "no-consent", False)

NO_CONSENT_CASES = [
    Case(
        "general_health_for_treatment_to_a_covered_provider_is_on_the_floor",
        (),
        PROVIDER,
        "TREAT",
        (),
        PERMIT_FLOOR,
        label_decisions=("N=permit",),
    ),
    Case("general_health_to_an_unknown_recipient_needs_a_consent", (), UNKNOWN, "TREAT", (), DENY_NONE),
    Case(
        "general_health_to_a_cbo_that_is_not_a_covered_entity_needs_a_consent",
        (),
        CBO,
        "TREAT",
        ("N",),
        DENY_NONE,
    ),
    Case(
        "mental_health_for_treatment_to_a_provider_is_on_the_non_ab133_floor",
        (),
        PROVIDER,
        "TREAT",
        ("MH",),
        PERMIT_FLOOR,
        obligations=("NORDSCLCD",),
    ),
    Case(
        "mental_health_for_payment_to_a_plan_is_not_on_the_non_ab133_floor",
        (),
        PLAN,
        "HPAYMT",
        ("BH",),
        DENY_NONE,
    ),
    Case(
        "mental_health_for_operations_is_not_on_the_non_ab133_floor",
        (),
        PROVIDER,
        "HOPERAT",
        ("PSY",),
        DENY_NONE,
    ),
    Case(
        "hiv_for_treatment_to_a_provider_is_on_the_floor",
        (),
        PROVIDER,
        "TREAT",
        ("HIV",),
        PERMIT_FLOOR,
        obligations=("NORDSCLCD",),
    ),
    Case("hiv_for_treatment_to_a_health_plan_is_not_on_the_floor", (), PLAN, "TREAT", ("HIV",), DENY_NONE),
    Case(
        "hiv_for_coordination_of_care_is_not_on_the_non_ab133_floor", (), PROVIDER, "COC", ("HIV",), DENY_NONE
    ),
    Case("part2_records_are_never_on_the_floor", (), PROVIDER, "TREAT", ("42CFRPart2",), DENY_NONE),
    Case(
        "reproductive_health_to_an_out_of_state_provider_is_never_on_the_floor",
        (),
        OUT_OF_STATE,
        "TREAT",
        ("SEX",),
        DENY_NONE,
    ),
    Case(
        "reproductive_health_to_a_california_provider_is_on_the_floor",
        (),
        PROVIDER,
        "TREAT",
        ("SEX",),
        PERMIT_FLOOR,
    ),
    Case(
        "gender_affirming_care_to_an_out_of_state_provider_is_never_on_the_floor",
        (),
        OUT_OF_STATE,
        "HOPERAT",
        ("GENDER",),
        DENY_NONE,
    ),
    Case(
        "general_health_to_an_out_of_state_provider_is_on_the_floor",
        (),
        OUT_OF_STATE,
        "TREAT",
        (),
        PERMIT_FLOOR,
    ),
    Case("sti_for_payment_to_a_plan_is_on_the_floor", (), PLAN, "HPAYMT", ("STD",), PERMIT_FLOOR),
    Case(
        "intimate_partner_violence_for_treatment_is_on_the_floor",
        (),
        PROVIDER,
        "TREAT",
        ("SDV",),
        PERMIT_FLOOR,
    ),
    Case("social_services_data_is_never_on_the_floor", (), PROVIDER, "COC", ("social-services",), DENY_NONE),
    Case("purpose_social_services_is_never_on_the_floor", (), PROVIDER, "social-services", (), DENY_NONE),
    Case("developmental_services_are_never_on_the_floor", (), PROVIDER, "TREAT", ("DVD",), DENY_NONE),
    Case("education_records_are_never_on_the_floor", (), PROVIDER, "TREAT", ("education",), DENY_NONE),
    Case("sud_alone_is_substance_use_on_the_floor", (), PROVIDER, "TREAT", ("SUD", "ETH"), PERMIT_FLOOR),
    Case(
        "sud_with_42cfrpart2_is_part2_and_not_on_the_floor",
        (),
        PROVIDER,
        "TREAT",
        ("SUD", "42CFRPart2"),
        DENY_NONE,
        label_decisions=("SUD=deny", "42CFRPart2=deny"),
    ),
    Case(
        "psychotherapy_notes_are_never_shared_without_a_consent",
        (),
        PROVIDER,
        "TREAT",
        ("PSYTHPN",),
        ("deny", "never", False),
    ),
    Case(
        "a_deny_takes_the_basis_of_the_first_denied_label",
        (),
        PROVIDER,
        "TREAT",
        ("N", "42CFRPart2", "MH"),
        DENY_NONE,
        label_decisions=("N=permit", "42CFRPart2=deny", "MH=permit"),
    ),
]

CONSENT_CASES = [
    Case(
        "part2_to_a_cbo_in_the_network_is_permitted_by_consent_with_obligations",
        (ALL,),
        CBO,
        "TREAT",
        ("42CFRPart2",),
        PERMIT_CONSENT,
        governing="all",
        obligations=("42CFRPart2", "NORDSCLCD"),
    ),
    Case(
        "hiv_for_payment_to_a_plan_is_permitted_by_consent",
        (ALL,),
        PLAN,
        "HPAYMT",
        ("HIV",),
        PERMIT_CONSENT,
        obligations=("NORDSCLCD",),
    ),
    Case(
        "general_health_for_treatment_rests_on_the_floor_even_with_a_consent",
        (ALL,),
        PROVIDER,
        "TREAT",
        (),
        PERMIT_FLOOR_ON_FILE,
        governing="all",
    ),
    Case(
        "a_permit_by_consent_and_by_floor_has_basis_consent",
        (ALL,),
        CBO,
        "TREAT",
        ("N", "HIV"),
        PERMIT_CONSENT,
    ),
    Case(
        "social_services_data_for_social_services_to_a_cbo_is_permitted_by_consent",
        (ALL,),
        CBO,
        "social-services",
        ("social-services",),
        PERMIT_CONSENT,
        obligations=(),
    ),
    Case(
        "a_covered_entity_outside_the_network_gets_no_part2_from_an_all_care_partners_consent",
        (ALL,),
        NON_MEMBER,
        "TREAT",
        ("42CFRPart2",),
        DENY_CONSENT,
    ),
    Case(
        "an_unknown_recipient_is_not_in_the_network", (ALL,), UNKNOWN, "TREAT", ("42CFRPart2",), DENY_CONSENT
    ),
    Case(
        "a_member_whose_membership_ended_before_t_is_not_in_the_network",
        (ALL,),
        LEFT_NETWORK,
        "TREAT",
        ("42CFRPart2",),
        DENY_CONSENT,
    ),
    Case(
        "a_member_whose_membership_ends_after_t_is_in_the_network",
        (ALL,),
        LEAVES_LATER,
        "TREAT",
        ("42CFRPart2",),
        PERMIT_CONSENT,
    ),
    Case("an_inactive_membership_does_not_count", (ALL,), INACTIVE_MEMBER, "TREAT", ("MH",), DENY_CONSENT),
    Case(
        "reproductive_health_to_an_out_of_state_provider_is_permitted_by_consent",
        (ALL,),
        OUT_OF_STATE,
        "TREAT",
        ("SEX",),
        PERMIT_CONSENT,
    ),
    Case(
        "psychotherapy_notes_are_never_shared_even_with_a_consent",
        (ALL,),
        PROVIDER,
        "TREAT",
        ("N", "PSYTHPN"),
        ("deny", "never", True),
        governing="all",
        label_decisions=("N=permit", "PSYTHPN=deny"),
        obligations=(),
    ),
    Case(
        "a_purpose_the_form_did_not_name_is_not_permitted",
        (PART2_TREAT_ONLY,),
        CBO,
        "HPAYMT",
        ("42CFRPart2",),
        DENY_CONSENT,
    ),
    Case(
        "the_purpose_the_form_named_is_permitted",
        (PART2_TREAT_ONLY,),
        CBO,
        "TREAT",
        ("42CFRPart2",),
        PERMIT_CONSENT,
    ),
    Case(
        "a_form_that_shares_nothing_is_a_consent_on_file_that_denies",
        (NONE,),
        CBO,
        "TREAT",
        ("N",),
        DENY_CONSENT,
        governing="none",
    ),
    Case("do_not_share_mental_health_beats_the_floor", (MIXED,), PROVIDER, "TREAT", ("MH",), DENY_CONSENT),
    Case(
        "do_not_share_yields_to_the_floor_when_the_setting_is_off",
        (MIXED,),
        PROVIDER,
        "TREAT",
        ("MH",),
        PERMIT_FLOOR_ON_FILE,
        settings=HONOR_OFF,
    ),
    Case("a_named_exclusion_beats_the_floor", (MIXED,), EXCLUDED, "TREAT", ("N",), DENY_CONSENT),
    Case("a_named_exclusion_beats_network_membership", (MIXED,), EXCLUDED, "TREAT", ("SUD",), DENY_CONSENT),
    Case(
        "general_health_to_another_provider_under_a_mixed_form_is_on_the_floor",
        (MIXED,),
        PROVIDER,
        "TREAT",
        ("N",),
        PERMIT_FLOOR_ON_FILE,
    ),
    Case(
        "substance_use_shared_by_the_form_goes_to_a_cbo", (MIXED,), CBO, "CAREMGT", ("SUD",), PERMIT_CONSENT
    ),
    Case(
        "a_substance_use_permit_never_decides_a_part2_request",
        (MIXED,),
        CBO,
        "CAREMGT",
        ("SUD", "42CFRPart2"),
        DENY_CONSENT,
    ),
    Case(
        "a_substance_use_deny_never_decides_a_part2_request",
        (PART2_NOT_SUD,),
        CBO,
        "TREAT",
        ("42CFRPart2", "SUD"),
        PERMIT_CONSENT,
    ),
    Case(
        "substance_use_do_not_share_beats_the_floor",
        (PART2_NOT_SUD,),
        PROVIDER,
        "TREAT",
        ("SUD",),
        DENY_CONSENT,
    ),
    Case(
        "one_denied_label_denies_the_whole_request",
        (MIXED,),
        PROVIDER,
        "TREAT",
        ("N", "MH"),
        DENY_CONSENT,
        label_decisions=("N=permit", "MH=deny"),
        obligations=(),
    ),
    Case(
        "an_included_care_partner_receives_what_the_form_shares",
        (ONLY_A_NON,),
        INCLUDED,
        "TREAT",
        ("42CFRPart2",),
        PERMIT_CONSENT,
    ),
    Case(
        "a_network_member_not_included_by_name_does_not",
        (ONLY_A_NON,),
        CBO,
        "TREAT",
        ("42CFRPart2",),
        DENY_CONSENT,
    ),
    Case(
        "an_actor_named_by_identifier_matches_the_recipient_identifier",
        (BY_IDENTIFIER,),
        BY_NPI,
        "TREAT",
        ("42CFRPart2",),
        PERMIT_CONSENT,
    ),
    Case(
        "an_actor_named_by_identifier_does_not_match_another_recipient",
        (BY_IDENTIFIER,),
        CBO,
        "TREAT",
        ("42CFRPart2",),
        DENY_CONSENT,
    ),
]

REGIME_CASES = [
    Case(
        "ab133_puts_mental_health_for_payment_on_the_floor",
        (ONLY_A_AB133,),
        PLAN,
        "HPAYMT",
        ("MH",),
        PERMIT_FLOOR_ON_FILE,
    ),
    Case(
        "non_ab133_keeps_mental_health_for_payment_off_the_floor",
        (ONLY_A_NON,),
        PLAN,
        "HPAYMT",
        ("MH",),
        DENY_CONSENT,
    ),
    Case(
        "ab133_puts_hiv_for_a_health_plan_on_the_floor",
        (ONLY_A_AB133,),
        PLAN,
        "HOPERAT",
        ("HIV",),
        PERMIT_FLOOR_ON_FILE,
    ),
    Case(
        "ab133_still_never_puts_part2_on_the_floor",
        (ONLY_A_AB133,),
        PLAN,
        "TREAT",
        ("42CFRPart2",),
        DENY_CONSENT,
    ),
    Case(
        "ab133_still_honours_ab352_for_out_of_state_recipients",
        (ONLY_A_AB133,),
        OUT_OF_STATE,
        "TREAT",
        ("GENDER",),
        DENY_CONSENT,
    ),
]

TIME_CASES = [
    Case(
        "before_the_signed_date_there_is_no_consent_on_file",
        (ALL,),
        CBO,
        "TREAT",
        ("42CFRPart2",),
        DENY_NONE,
        time="2024-12-01",
    ),
    Case(
        "after_the_expiration_date_there_is_no_consent_on_file",
        (ALL,),
        CBO,
        "TREAT",
        ("42CFRPart2",),
        DENY_NONE,
        time="2026-01-11",
    ),
    Case(
        "the_expiration_day_is_still_covered",
        (ALL,),
        CBO,
        "TREAT",
        ("42CFRPart2",),
        PERMIT_CONSENT,
        time="2026-01-10",
    ),
    Case(
        "the_signed_day_is_covered", (ALL,), CBO, "TREAT", ("42CFRPart2",), PERMIT_CONSENT, time="2025-01-10"
    ),
    Case(
        "a_utc_instant_is_read_as_its_california_date",
        (ALL,),
        CBO,
        "TREAT",
        ("42CFRPart2",),
        DENY_NONE,
        time="2025-01-10T07:59:00Z",
    ),
    Case(
        "a_dateTime_without_offset_is_read_in_the_server_zone",
        (ALL,),
        CBO,
        "TREAT",
        ("42CFRPart2",),
        PERMIT_CONSENT,
        time="2025-01-10T00:30:00",
    ),
    Case(
        "before_a_revocation_the_revoked_form_still_governs_past_days",
        (REVOKED, REVOCATION),
        CBO,
        "TREAT",
        ("42CFRPart2",),
        PERMIT_CONSENT,
        time="2025-05-15",
        governing="rev-orig",
    ),
    Case(
        "after_a_revocation_nothing_is_shared_by_consent",
        (REVOKED, REVOCATION),
        CBO,
        "TREAT",
        ("42CFRPart2",),
        DENY_CONSENT,
        time="2025-06-15",
        governing="revocation",
    ),
    Case(
        "a_revocation_is_an_explicit_do_not_share_that_beats_the_floor",
        (REVOKED, REVOCATION),
        PROVIDER,
        "TREAT",
        ("N",),
        DENY_CONSENT,
        time="2025-06-15",
    ),
    Case(
        "on_the_revocation_effective_day_the_revocation_governs",
        (REVOKED, REVOCATION),
        CBO,
        "TREAT",
        ("42CFRPart2",),
        DENY_CONSENT,
        time="2025-06-01",
        governing="revocation",
    ),
    Case(
        "an_inactive_consent_without_an_end_never_governs",
        (INACTIVE_NO_END,),
        CBO,
        "TREAT",
        ("42CFRPart2",),
        DENY_NONE,
    ),
    Case("an_entered_in_error_consent_never_governs", (IN_ERROR,), CBO, "TREAT", ("42CFRPart2",), DENY_NONE),
    Case(
        "a_superseded_form_governs_the_days_before_the_newer_one",
        (OLD, NEWER),
        CBO,
        "TREAT",
        ("42CFRPart2",),
        PERMIT_CONSENT,
        time="2025-02-15",
        governing="old",
    ),
    Case(
        "the_newer_form_governs_from_its_signed_date",
        (OLD, NEWER),
        CBO,
        "TREAT",
        ("42CFRPart2",),
        DENY_CONSENT,
        time="2025-03-01",
        governing="newer",
    ),
    Case(
        "the_latest_signed_wins_whatever_the_arrival_order",
        (NEWER, form(id="older-active", signed="2024-12-01")),
        CBO,
        "TREAT",
        ("42CFRPart2",),
        DENY_CONSENT,
        time="2025-03-15",
        governing="newer",
    ),
    Case(
        "a_tie_on_signed_date_goes_to_the_one_recorded_last",
        (TIE_LAST, TIE_FIRST),
        CBO,
        "TREAT",
        ("42CFRPart2",),
        PERMIT_CONSENT,
        governing="tie-last",
    ),
    Case(
        "an_event_based_expiration_stays_open_until_the_event_is_recorded",
        (EVENT_OPEN,),
        CBO,
        "TREAT",
        ("42CFRPart2",),
        PERMIT_CONSENT,
        time="2030-01-01",
    ),
    Case(
        "a_recorded_expiration_event_ends_the_consent",
        (EVENT_RECORDED,),
        CBO,
        "TREAT",
        ("42CFRPart2",),
        DENY_NONE,
        time="2025-09-01",
    ),
    Case(
        "a_consent_that_is_not_an_ascmi_form_is_ignored",
        (_not_ascmi(form(id="other-program")),),
        CBO,
        "TREAT",
        ("42CFRPart2",),
        DENY_NONE,
    ),
]

MINOR_CASES = [
    Case(
        "a_parent_signature_does_not_share_a_minors_mental_health",
        (MINOR_UNSIGNED,),
        CBO,
        "CAREMGT",
        ("MH",),
        DENY_CONSENT,
        birth=MINOR,
    ),
    Case(
        "the_minors_own_signature_shares_their_mental_health",
        (MINOR_SIGNED,),
        CBO,
        "CAREMGT",
        ("MH",),
        PERMIT_CONSENT,
        birth=MINOR,
    ),
    Case(
        "a_minors_signature_covers_only_the_categories_signed",
        (MINOR_SIGNED,),
        CBO,
        "TREAT",
        ("STD",),
        DENY_CONSENT,
        birth=MINOR,
    ),
    Case(
        "a_parent_signature_shares_a_minors_hiv_information",
        (MINOR_UNSIGNED,),
        CBO,
        "TREAT",
        ("HIV",),
        PERMIT_CONSENT,
        birth=MINOR,
    ),
    Case(
        "on_the_18th_birthday_the_minor_rule_stops",
        (MINOR_UNSIGNED,),
        CBO,
        "TREAT",
        ("SDV",),
        PERMIT_CONSENT,
        birth=date(2007, 3, 1),
    ),
    Case(
        "the_day_before_the_18th_birthday_the_minor_rule_applies",
        (MINOR_UNSIGNED,),
        CBO,
        "TREAT",
        ("SDV",),
        DENY_CONSENT,
        birth=date(2007, 3, 2),
    ),
    Case(
        "the_floor_still_applies_to_a_minors_mental_health",
        (MINOR_UNSIGNED,),
        PROVIDER,
        "TREAT",
        ("MH",),
        PERMIT_FLOOR_ON_FILE,
        birth=MINOR,
    ),
    Case(
        "a_minors_general_health_is_shared_on_the_parents_signature",
        (MINOR_UNSIGNED,),
        CBO,
        "TREAT",
        (),
        PERMIT_CONSENT,
        birth=MINOR,
    ),
    Case(
        "an_unknown_birth_date_is_treated_as_an_adult",
        (MINOR_UNSIGNED,),
        CBO,
        "TREAT",
        ("MH",),
        PERMIT_CONSENT,
        birth=None,
    ),
]

ALL_CASES = NO_CONSENT_CASES + CONSENT_CASES + REGIME_CASES + TIME_CASES + MINOR_CASES
