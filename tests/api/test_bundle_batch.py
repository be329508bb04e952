"""Batch Bundles (http.html#transaction, bundle.html#batch): independent entries, failures reported per entry."""

from __future__ import annotations

import httpx
import pytest

from tests.api.bundle_support import batch, entry, json_patch, observation, post_bundle
from tests.api.support import create, patient


def assert_failed_entry(result: dict[str, object], status: int, index: int) -> dict[str, object]:
    response = result["response"]
    assert isinstance(response, dict)
    assert response["status"].startswith(str(status)), result
    issue = response["outcome"]["issue"][0]
    assert f"Bundle.entry[{index}]" in issue["diagnostics"], issue
    assert "resource" not in result and "location" not in response
    return issue  # type: ignore[no-any-return]


async def test_batch_applies_the_good_entries_and_reports_each_failure_in_its_own_entry(
        client: httpx.AsyncClient) -> None:
    existing, other = await create(client), await create(client)
    bundle = batch(
        entry("POST", "Patient", patient()),
        entry("GET", "Patient/ghost"),
        entry("PUT", f"Patient/{existing['id']}", {**existing, "gender": "male"}, ifMatch='W/"9"'),
        entry("POST", "Observation", observation("Patient/ghost")),
        entry("PUT", "Patient/other", patient(id="other")),
        entry("PATCH", f"Patient/{other['id']}", json_patch([{"op": "test", "path": "/gender", "value": "x"}])),
        entry("DELETE", f"Patient/{existing['id']}", ifMatch='W/"1"'),
    )
    response = await post_bundle(client, bundle)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["type"] == "batch-response"
    created, missing, stale, dangling, put, bad_patch, deleted = body["entry"]
    assert created["response"]["status"].startswith("201")
    assert_failed_entry(missing, 404, 1)
    assert_failed_entry(stale, 412, 2)
    assert assert_failed_entry(dangling, 400, 3)["code"] == "not-found"
    assert put["response"]["status"].startswith("201")
    assert_failed_entry(bad_patch, 422, 5)
    assert deleted["response"]["status"].startswith("204")
    assert (await client.get(f"/fhir/{created['response']['location'].rsplit('/_history', 1)[0]}")).status_code == 200
    assert (await client.get("/fhir/Patient/other")).status_code == 200
    assert (await client.get(f"/fhir/Patient/{existing['id']}")).status_code == 410
    assert (await client.get("/fhir/Observation")).json().get("total", 0) == 0


@pytest.mark.parametrize("bad", [
    7,
    {"resource": patient()},
    {"request": {"method": "FETCH", "url": "Patient"}},
    {"request": {"method": "GET", "url": "http://elsewhere.org/fhir/Patient/1"}},
    {"request": {"method": "GET", "url": "Spaceship/1"}},
    {"request": {"method": "PUT", "url": "Patient/a"}, "resource": patient(id="b")},
    {"request": {"method": "POST", "url": "Patient"}, "resource": patient(gender=["female"])},
    {"request": {"method": "PUT", "url": "Patient"}, "resource": patient()},
    {"request": {"method": "POST", "url": "_history"}, "resource": patient()},
    {"request": {"method": "POST", "url": "Patient", "ifNoneExist": 3}, "resource": patient()},
])
async def test_a_malformed_batch_entry_fails_alone(client: httpx.AsyncClient, bad: object) -> None:
    response = await post_bundle(client, batch(entry("POST", "Patient", patient()), bad,
                                               entry("POST", "Patient", patient())))
    assert response.status_code == 200, response.text
    first, failed, last = response.json()["entry"]
    assert first["response"]["status"].startswith("201") and last["response"]["status"].startswith("201")
    response_status = failed["response"]["status"]
    assert response_status[:3] in ("400", "404", "405"), failed
    assert "Bundle.entry[1]" in failed["response"]["outcome"]["issue"][0]["diagnostics"]


async def test_batch_entries_do_not_see_each_others_temporary_ids(client: httpx.AsyncClient) -> None:
    """bundle.html#batch: references between batch entries are not resolved; with reference checking on, a
    reference to a urn:uuid is simply not a local reference."""
    uuid = "urn:uuid:1f0e1d2c-3b4a-4958-8776-655443322110"
    response = await post_bundle(client, batch(entry("POST", "Patient", patient(), uuid),
                                               entry("POST", "Observation", observation(uuid))))
    assert response.status_code == 200, response.text
    assert [e["response"]["status"][:3] for e in response.json()["entry"]] == ["201", "201"]


async def test_batch_prefer_minimal_returns_no_resources(client: httpx.AsyncClient) -> None:
    response = await post_bundle(client, batch(entry("POST", "Patient", patient())), prefer="return=minimal")
    assert response.status_code == 200, response.text
    created = response.json()["entry"][0]
    assert "resource" not in created and created["response"]["location"].startswith("Patient/")
