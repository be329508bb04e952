"""POST /ascmi/expiration-events: a Care Partner records the day an event-based expiration happened (§5)."""

from __future__ import annotations

from typing import Any

import httpx

from tests.ascmi_http.support import consent_ref, example, get, issues, post_form, post_revocation, search, total


async def _event(client: httpx.AsyncClient, body: dict[str, Any], status: int, code: str | None = None
                 ) -> httpx.Response:
    before = await total(client)
    response = await client.post("/ascmi/expiration-events", json=body)
    assert response.status_code == status, response.text
    if status != 200:
        assert await total(client) == before
        if code:
            assert issues(response)[0]["code"] == code
    return response


async def test_recording_the_event_by_form_id_ends_the_consent_on_that_date(client: httpx.AsyncClient) -> None:
    form = await post_form(client, example("ab133-all-share"))  # expires on medi-cal-disenrollment
    response = await _event(client, {"formId": "GPHP-2025-000183", "event": "medi-cal-disenrollment",
                                     "date": "2025-08-31"}, 200)
    consent = response.json()
    assert consent["resourceType"] == "Consent" and consent["id"] == consent_ref(form).split("/")[1]
    assert consent["meta"]["versionId"] == "2"
    assert consent["provision"]["period"] == {"start": "2025-02-03", "end": "2025-08-31"}
    assert consent == await get(client, consent_ref(form))
    assert response.headers["location"].endswith(f"{consent_ref(form)}/_history/2")
    provenances = await search(client, f"Provenance?target={consent_ref(form)}")
    assert any(c["code"] == "medi-cal-disenrollment" for p in provenances for r in p.get("reason", [])
               for c in r.get("coding", []))


async def test_recording_the_event_by_consent_keeps_an_earlier_end_date(client: httpx.AsyncClient) -> None:
    form = await post_form(client, example("named-include-exclude"))  # end-of-services, or 2026-04-11
    response = await _event(client, {"consent": consent_ref(form), "event": "end-of-services",
                                     "date": "2026-06-30"}, 200)
    assert response.json()["provision"]["period"]["end"] == "2026-04-11"
    response = await _event(client, {"consent": consent_ref(form), "event": "end-of-services",
                                     "date": "2025-05-15"}, 200)
    assert response.json()["provision"]["period"]["end"] == "2025-05-15"


async def test_an_unknown_form_or_consent_is_404(client: httpx.AsyncClient) -> None:
    await _event(client, {"formId": "NOPE-1", "event": "end-of-services", "date": "2025-05-01"}, 404, "not-found")
    await _event(client, {"consent": "Consent/nope", "event": "end-of-services", "date": "2025-05-01"}, 404)


async def test_a_revoked_form_is_409(client: httpx.AsyncClient) -> None:
    await post_form(client, example("ab133-all-share"))
    await post_revocation(client, example("revoke-by-form-id"))
    await _event(client, {"formId": "GPHP-2025-000183", "event": "medi-cal-disenrollment", "date": "2025-06-10"},
                 409, "conflict")


async def test_an_event_the_consent_does_not_expire_on_is_422(client: httpx.AsyncClient) -> None:
    form = await post_form(client, example("ab133-all-share"))
    response = await _event(client, {"consent": consent_ref(form), "event": "end-of-services",
                                     "date": "2025-06-10"}, 422)
    assert issues(response)[0]["expression"] == ["$.event"]
    dated = await post_form(client, example("with-attachment"))  # expires on a date only
    await _event(client, {"consent": consent_ref(dated), "event": "end-of-services", "date": "2025-06-10"}, 422)


async def test_a_date_before_the_signed_date_is_422(client: httpx.AsyncClient) -> None:
    await post_form(client, example("ab133-all-share"))  # signed 2025-02-03
    response = await _event(client, {"formId": "GPHP-2025-000183", "event": "medi-cal-disenrollment",
                                     "date": "2025-01-31"}, 422)
    assert issues(response)[0]["expression"] == ["$.date"]


async def test_malformed_requests_are_422_at_the_field(client: httpx.AsyncClient) -> None:
    cases = [
        ({"event": "end-of-services", "date": "2025-05-01"}, "$"),
        ({"formId": "A", "consent": "Consent/x", "event": "end-of-services", "date": "2025-05-01"}, "$"),
        ({"formId": "A", "event": "moved-away", "date": "2025-05-01"}, "$.event"),
        ({"formId": "A", "date": "2025-05-01"}, "$.event"),
        ({"formId": "A", "event": "end-of-services"}, "$.date"),
        ({"formId": "A", "event": "end-of-services", "date": "May 1"}, "$.date"),
        ({"formId": "A", "event": "end-of-services", "date": "2999-01-01"}, "$.date"),
        ({"consent": "Patient/1", "event": "end-of-services", "date": "2025-05-01"}, "$.consent"),
        ({"formId": 7, "event": "end-of-services", "date": "2025-05-01"}, "$.formId"),
    ]
    for body, path in cases:
        response = await _event(client, body, 422)
        assert path in {e for i in issues(response) for e in i.get("expression", [])}, (body, response.text)
