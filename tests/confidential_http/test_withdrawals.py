"""POST /ascmi/confidential-communications/withdrawals ends a request; 404/409/422 as for revocations."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import httpx

from tests.confidential_http.support import (
    WITHDRAWALS,
    cin,
    consent_ref,
    contact,
    created,
    example,
    expressions,
    form,
    get,
    issues,
    out,
    post_request,
    search,
    total,
)


async def _withdraw(client: httpx.AsyncClient, body: dict, status: int = 200) -> httpx.Response:
    response = await client.post(WITHDRAWALS, json=body)
    assert response.status_code == status, response.text
    return response


async def test_a_withdrawal_ends_the_request_the_day_before_and_cancels_its_open_tasks(
        client: httpx.AsyncClient) -> None:
    filed = await post_request(client, example("phone"))
    response = await _withdraw(client, example("withdrawal"))
    assert response.headers["location"].endswith(f"{consent_ref(filed)}/_history/2")
    consent = response.json()
    assert consent["status"] == "inactive"
    assert consent["provision"]["period"] == {"start": "2026-12-01", "end": "2026-12-03"}
    (task,) = created(filed, "Task")
    assert (await get(client, task))["status"] == "cancelled"
    provenance = await search(client, f"Provenance?target={consent_ref(filed)}")
    assert any("withdrawn" in p.get("reason", [{}])[0].get("text", "") for p in provenance)


async def test_the_request_applies_up_to_the_withdrawal_and_not_after(client: httpx.AsyncClient) -> None:
    await post_request(client, example("phone"))
    await _withdraw(client, example("withdrawal"))
    before = await contact(client, cin("97112233G"), ("about", "valueCoding", {"code": "SEX"}),
                           ("time", "valueDateTime", "2026-12-03"))
    assert out(before, "basis") == [{"valueCode": "designated"}]
    after = await contact(client, cin("97112233G"), ("about", "valueCoding", {"code": "SEX"}),
                          ("time", "valueDateTime", "2026-12-04"), status=422)
    assert issues_of(after)[0]["code"] == "not-found"  # the member has no contact of his own on file


def issues_of(body: dict) -> list[dict]:
    assert body["resourceType"] == "OperationOutcome"
    return body["issue"]  # type: ignore[no-any-return]


async def test_a_request_withdrawn_the_day_it_was_received_never_applied(client: httpx.AsyncClient) -> None:
    filed = await post_request(client, example("phone"))
    consent = (await _withdraw(client, {"consent": consent_ref(filed), "receivedDate": "2026-12-01"})).json()
    assert consent["status"] == "inactive" and consent["provision"]["period"] == {"start": "2026-12-01"}
    answer = await contact(client, cin("97112233G"), ("time", "valueDateTime", "2026-12-01"), status=422)
    assert "no address, phone or email" in issues_of(answer)[0]["diagnostics"]


async def test_withdrawing_twice_is_a_conflict_and_an_unknown_request_is_not_found(client: httpx.AsyncClient) -> None:
    await post_request(client, example("phone"))
    await _withdraw(client, example("withdrawal"))
    again = await _withdraw(client, example("withdrawal"), status=409)
    assert issues(again)[0]["code"] == "conflict"
    unknown = await _withdraw(client, {"requestId": "NOPE-1", "receivedDate": "2026-12-04"}, status=404)
    assert expressions(unknown) == {"$.requestId"}
    missing = await _withdraw(client, {"consent": "Consent/nope", "receivedDate": "2026-12-04"}, status=404)
    assert expressions(missing) == {"$.consent"}


async def test_a_replaced_request_cannot_be_withdrawn(client: httpx.AsyncClient) -> None:
    first = consent_ref(await post_request(client, example("electronic")))
    await post_request(client, example("replacement"))
    response = await _withdraw(client, {"consent": first, "receivedDate": "2026-12-04"}, status=409)
    assert "no longer in force" in issues(response)[0]["diagnostics"]


async def test_withdrawal_422s_name_the_field_and_store_nothing(client: httpx.AsyncClient) -> None:
    filed = consent_ref(await post_request(client, example("phone")))
    form_consent = await client.post("/ascmi/forms", json=form("share-nothing"))
    before = await total(client)
    tomorrow = (datetime.now(ZoneInfo("America/Los_Angeles")).date() + timedelta(days=1)).isoformat()
    cases = [
        ({"consent": filed, "receivedDate": "2026-11-30"}, "$.receivedDate"),  # before the request itself
        ({"consent": filed, "receivedDate": tomorrow}, "$.receivedDate"),
        ({"consent": filed, "requestId": "GPHP-CC-2026-1187", "receivedDate": "2026-12-04"}, "$.consent"),
        ({"receivedDate": "2026-12-04"}, "$.requestId"),
        ({"consent": filed}, "$.receivedDate"),
        ({"consent": "Patient/1", "receivedDate": "2026-12-04"}, "$.consent"),
        ({"consent": filed, "receivedDate": "2026-12-04", "reason": "x"}, "$.reason"),
        ({"consent": consent_ref(form_consent), "receivedDate": "2026-12-04"}, "$.consent"),  # a form, not a request
    ]
    for body, where in cases:
        response = await client.post(WITHDRAWALS, json=body)
        assert response.status_code == 422, (body, response.text)
        assert where in expressions(response), (body, response.text)
    assert await total(client) == before


async def test_a_request_id_two_care_partners_used_needs_received_by(client: httpx.AsyncClient) -> None:
    await post_request(client, example("phone"))
    other = example("phone")
    other["receivedBy"] = example("electronic")["receivedBy"]
    other["individual"] = example("mail")["individual"]
    clinic_request = consent_ref(await post_request(client, other))
    ambiguous = await _withdraw(client, {"requestId": "GPHP-CC-2026-1187", "receivedDate": "2026-12-04"}, status=422)
    assert "name receivedBy or the Consent" in issues(ambiguous)[0]["diagnostics"]
    named = {"requestId": "GPHP-CC-2026-1187", "receivedDate": "2026-12-04", "receivedBy": other["receivedBy"]}
    response = await _withdraw(client, named)
    assert response.headers["location"].startswith(f"http://test/fhir/{clinic_request}/_history/2")
    plan = example("withdrawal")
    plan["receivedBy"]["identifiers"].reverse()  # the same Care Partner, its identifiers in another order
    assert (await _withdraw(client, plan)).json()["status"] == "inactive"
