"""Plain-language rendering of a Consent."""

from __future__ import annotations

import json

from fhir_server.ascmi.render import render_consent, render_form
from tests.ascmi.conftest import FORMS, TODAY, example


def test_a_named_form_says_who_may_see_what_for_what_and_until_when(terminology):
    text = render_form(example("named-include-exclude"), terminology=terminology, today=TODAY)
    assert "ASCMI AB 133 signed 2025-04-12 (in force)" in text
    assert "through 2026-04-11 or until end of services" in text
    assert (
        "Mental health: with Harbor Light ECM Partners, Sierra Vista Community Clinic, Bay Homes Community "
        "Supports; for treatment, coordination of care, care management"
    ) in text
    assert "Never with: Redwood County Department of Social Services." in text
    assert "HIV/AIDS" in text.split("Not shared:")[1]


def test_a_form_that_shares_nothing_says_so(terminology):
    text = render_form(example("share-nothing"), terminology=terminology, today=TODAY)
    assert "Nothing may be shared on the strength of this form." in text


def test_a_minors_own_signature_is_shown(terminology):
    text = render_form(example("minor-15"), terminology=terminology, today=TODAY)
    assert "Mental health (signed for by the minor): with all of the person's Care Partners" in text


def test_a_revocation_and_a_revoked_form_read_as_such(terminology):
    bundle = json.loads((FORMS / "revoke-by-consent.bundle.json").read_text())
    revoked = next(e["resource"] for e in bundle["entry"] if e["request"]["method"] == "PUT")
    revocation = next(
        e["resource"]
        for e in bundle["entry"]
        if e["request"]["method"] == "POST" and e["resource"]["resourceType"] == "Consent"
    )
    assert "(no longer in force)" in render_consent(revoked, terminology=terminology)
    assert "The person revoked their ASCMI form" in render_consent(revocation, terminology=terminology)
