"""POST /ascmi/revocations: the revoked form's history, the revocation on file, and the refusals (§3, §5)."""

from __future__ import annotations

import httpx

from tests.ascmi_http.support import (
    consent_ref,
    example,
    get,
    issues,
    post_form,
    post_revocation,
    search,
    total,
)


async def _revoke_by_form_id(client: httpx.AsyncClient) -> tuple[str, httpx.Response]:
    form = await post_form(client, example("ab133-all-share"))
    return consent_ref(form), await post_revocation(client, example("revoke-by-form-id"))


async def test_the_revoked_consent_gets_an_inactive_version_ending_the_day_before(client: httpx.AsyncClient) -> None:
    revoked, _ = await _revoke_by_form_id(client)
    consent = await get(client, revoked)
    assert consent["status"] == "inactive"
    assert consent["provision"]["period"]["end"] == "2025-05-31"  # effective 2025-06-01
    history = (await client.get(f"/fhir/{revoked}/_history")).json()
    versions = {e["resource"]["meta"]["versionId"]: e["resource"]["status"] for e in history["entry"]}
    assert versions == {"1": "active", "2": "inactive"}
    assert (await client.get(f"/fhir/{revoked}/_history/1")).json()["status"] == "active"


async def test_a_provenance_records_the_revocation(client: httpx.AsyncClient) -> None:
    revoked, _ = await _revoke_by_form_id(client)
    provenances = await search(client, f"Provenance?target={revoked}")
    updates = [p for p in provenances if p["activity"]["coding"][0]["code"] == "UPDATE"]
    assert len(updates) == 1
    assert updates[0]["occurredDateTime"] == "2025-06-01"
    assert updates[0]["reason"][0]["coding"][0]["code"] == "REVOCATION"
    assert updates[0]["signature"][0]["when"].startswith("2025-05-30")


async def test_the_revocation_is_an_active_consent_on_file(client: httpx.AsyncClient) -> None:
    revoked, response = await _revoke_by_form_id(client)
    own = await get(client, consent_ref(response))
    assert own["status"] == "active"
    assert own["policyRule"]["coding"][0]["code"] == "REVOCATION"
    assert own["dateTime"] == "2025-05-30" and own["provision"]["period"] == {"start": "2025-06-01"}
    assert own["provision"]["type"] == "deny"
    assert {p["type"] for p in own["provision"]["provision"]} == {"deny"}
    assert own["patient"] == (await get(client, revoked))["patient"]
    assert own["identifier"][0]["value"] == "GPHP-REV-2025-0012"


async def test_revoke_by_consent_names_the_form_s_consent(client: httpx.AsyncClient) -> None:
    form = await post_form(client, example("named-include-exclude"))
    revocation = example("revoke-by-consent")
    revocation["revokes"]["consent"] = consent_ref(form)
    await post_revocation(client, revocation)
    assert (await get(client, consent_ref(form)))["provision"]["period"]["end"] == "2025-06-01"


async def _refused(client: httpx.AsyncClient, revocation: dict, status: int, code: str | None = None
                   ) -> httpx.Response:
    before = await total(client)
    response = await client.post("/ascmi/revocations", json=revocation)
    assert response.status_code == status, response.text
    if code:
        assert issues(response)[0]["code"] == code
    assert await total(client) == before
    return response


async def test_revoking_an_unknown_form_is_404(client: httpx.AsyncClient) -> None:
    await _refused(client, example("revoke-by-form-id"), 404, "not-found")
    revocation = example("revoke-by-consent")
    revocation["revokes"]["consent"] = "Consent/nobody"
    await _refused(client, revocation, 404, "not-found")


async def test_revoking_an_already_revoked_form_is_409(client: httpx.AsyncClient) -> None:
    await _revoke_by_form_id(client)
    await _refused(client, example("revoke-by-form-id"), 409, "conflict")


async def test_revoking_a_superseded_form_is_409(client: httpx.AsyncClient) -> None:
    await post_form(client, example("ab133-all-share"))
    newer = example("ab133-all-share")
    newer["formId"], newer["signedDate"], newer["signature"]["date"] = "GPHP-2025-000999", "2025-04-01", "2025-04-01"
    await post_form(client, newer)
    await _refused(client, example("revoke-by-form-id"), 409, "conflict")


async def test_a_revocation_effective_before_the_form_was_signed_is_422(client: httpx.AsyncClient) -> None:
    await post_form(client, example("ab133-all-share"))  # signed 2025-02-03
    revocation = example("revoke-by-form-id")
    revocation.update(effectiveDate="2025-02-01", signedDate="2025-02-01")
    revocation["signature"]["date"] = "2025-02-01"
    response = await _refused(client, revocation, 422)
    assert issues(response)[0]["expression"] == ["$.effectiveDate"]


async def test_naming_a_revocation_s_own_consent_is_422(client: httpx.AsyncClient) -> None:
    _, response = await _revoke_by_form_id(client)
    revocation = example("revoke-by-consent")
    revocation["revokes"]["consent"] = consent_ref(response)
    revocation["individual"] = example("revoke-by-form-id")["individual"]
    await _refused(client, revocation, 422)


async def test_a_revocation_for_another_person_is_422(client: httpx.AsyncClient) -> None:
    await post_form(client, example("ab133-all-share"))
    revocation = example("revoke-by-form-id")
    revocation["individual"]["mediCalId"] = "90000000X"
    response = await _refused(client, revocation, 422)
    assert issues(response)[0]["expression"] == ["$.individual"]
