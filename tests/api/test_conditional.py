"""Conditional interactions (http.html#ccreate, #cond-update, #cdelete, #patch): create with If-None-Exist,
PUT/DELETE/PATCH on ``Type?criteria`` (``_id`` and ``identifier`` criteria)."""

from __future__ import annotations

import httpx
import orjson
import pytest

from tests.api.support import assert_outcome, create, patient

MRN = "https://example.org/mrn"
PATCH_HEADERS = {"content-type": "application/json-patch+json"}
REMOVE_GENDER = orjson.dumps([{"op": "remove", "path": "/gender"}])


def with_mrn(value: str, **fields: object) -> dict[str, object]:
    return patient(identifier=[{"system": MRN, "value": value}], **fields)


async def patient_versions(client: httpx.AsyncClient) -> int:
    return int((await client.get("/fhir/Patient/_history")).json()["total"])


# -- conditional create -------------------------------------------------------------------------------------------


async def test_if_none_exist_with_a_match_returns_it_without_creating(client: httpx.AsyncClient) -> None:
    existing = await create(client)
    response = await client.post("/fhir/Patient", json=patient(), headers={"if-none-exist": f"_id={existing['id']}"})
    assert response.status_code == 200, response.text
    assert response.headers["location"].endswith(f"/Patient/{existing['id']}/_history/1")
    assert await patient_versions(client) == 1


async def test_if_none_exist_without_a_match_creates(client: httpx.AsyncClient) -> None:
    response = await client.post("/fhir/Patient", json=patient(), headers={"if-none-exist": "_id=nobody"})
    assert response.status_code == 201, response.text


async def test_if_none_exist_by_identifier(client: httpx.AsyncClient) -> None:
    headers = {"if-none-exist": f"identifier={MRN}|m1"}
    first = await client.post("/fhir/Patient", json=with_mrn("m1"), headers=headers)
    second = await client.post("/fhir/Patient", json=with_mrn("m1"), headers=headers)
    assert (first.status_code, second.status_code) == (201, 200)
    assert first.headers["location"] == second.headers["location"]


async def test_if_none_exist_with_several_matches_is_412(client: httpx.AsyncClient) -> None:
    a, b = await create(client), await create(client)
    response = await client.post("/fhir/Patient", json=patient(), headers={"if-none-exist": f"_id={a['id']},{b['id']}"})
    assert_outcome(response, 412, "multiple-matches")


# -- conditional update -------------------------------------------------------------------------------------------


async def test_conditional_update_with_one_match_updates_it(client: httpx.AsyncClient) -> None:
    existing = await create(client)
    response = await client.put(f"/fhir/Patient?_id={existing['id']}", json=patient(gender="male"))
    assert response.status_code == 200, response.text
    assert response.json()["id"] == existing["id"] and response.json()["meta"]["versionId"] == "2"


async def test_conditional_update_without_a_match_creates(client: httpx.AsyncClient) -> None:
    response = await client.put("/fhir/Patient?_id=nobody", json=patient())
    assert response.status_code == 201, response.text
    assert await patient_versions(client) == 1


async def test_conditional_update_without_a_match_does_not_overwrite_the_resource_its_body_names(
        client: httpx.AsyncClient) -> None:
    """R5 http.html#cond-update spells out what R4 implies: no match + an id that exists → 409, no overwrite."""
    bystander = await create(client)
    response = await client.put("/fhir/Patient?_id=nobody", json={**bystander, "gender": "male"})
    assert_outcome(response, 409, "conflict")
    assert (await client.get(f"/fhir/Patient/{bystander['id']}")).json()["meta"]["versionId"] == "1"


async def test_conditional_update_with_several_matches_is_412(client: httpx.AsyncClient) -> None:
    a, b = await create(client), await create(client)
    assert_outcome(await client.put(f"/fhir/Patient?_id={a['id']},{b['id']}", json=patient()), 412,
                   "multiple-matches")


async def test_conditional_update_whose_body_id_differs_from_the_match_is_400(client: httpx.AsyncClient) -> None:
    existing = await create(client)
    assert_outcome(await client.put(f"/fhir/Patient?_id={existing['id']}", json=patient(id="other")), 400,
                   "invalid")


async def test_conditional_update_by_identifier(client: httpx.AsyncClient) -> None:
    existing = await create(client, with_mrn("m2"))
    response = await client.put(f"/fhir/Patient?identifier={MRN}|m2", json=with_mrn("m2", gender="male"))
    assert response.status_code == 200, response.text
    assert response.json()["id"] == existing["id"]


@pytest.mark.parametrize("query", ["", "?", "?_format=json", "?_pretty=true"])
async def test_conditional_interactions_need_criteria(client: httpx.AsyncClient, query: str) -> None:
    await create(client)
    assert_outcome(await client.put(f"/fhir/Patient{query}", json=patient()), 400, "invalid")
    assert_outcome(await client.delete(f"/fhir/Patient{query}"), 400, "invalid")
    assert await patient_versions(client) == 1


async def test_an_unknown_search_parameter_does_not_match_everything(client: httpx.AsyncClient) -> None:
    await create(client)
    response = await client.delete("/fhir/Patient?no-such-parameter=1")
    assert response.status_code == 400, response.text
    assert await patient_versions(client) == 1


# -- conditional delete -------------------------------------------------------------------------------------------


async def test_conditional_delete_deletes_every_match(client: httpx.AsyncClient) -> None:
    a, b, kept = await create(client), await create(client), await create(client)
    response = await client.delete(f"/fhir/Patient?_id={a['id']},{b['id']}")
    assert response.status_code in (200, 204), response.text
    assert (await client.get(f"/fhir/Patient/{a['id']}")).status_code == 410
    assert (await client.get(f"/fhir/Patient/{b['id']}")).status_code == 410
    assert (await client.get(f"/fhir/Patient/{kept['id']}")).status_code == 200


async def test_conditional_delete_without_a_match_succeeds_and_changes_nothing(client: httpx.AsyncClient) -> None:
    await create(client)
    response = await client.delete("/fhir/Patient?_id=nobody")
    assert response.status_code in (200, 204), response.text
    assert await patient_versions(client) == 1


async def test_conditional_delete_by_identifier(client: httpx.AsyncClient) -> None:
    doomed, kept = await create(client, with_mrn("gone")), await create(client, with_mrn("kept"))
    assert (await client.delete(f"/fhir/Patient?identifier={MRN}|gone")).status_code in (200, 204)
    assert (await client.get(f"/fhir/Patient/{doomed['id']}")).status_code == 410
    assert (await client.get(f"/fhir/Patient/{kept['id']}")).status_code == 200


# -- conditional patch --------------------------------------------------------------------------------------------


async def test_conditional_patch_with_one_match_patches_it(client: httpx.AsyncClient) -> None:
    existing = await create(client)
    response = await client.patch(f"/fhir/Patient?_id={existing['id']}", content=REMOVE_GENDER,
                                  headers=PATCH_HEADERS)
    assert response.status_code == 200, response.text
    assert "gender" not in response.json() and response.json()["meta"]["versionId"] == "2"


async def test_conditional_patch_without_a_match_is_404(client: httpx.AsyncClient) -> None:
    response = await client.patch("/fhir/Patient?_id=nobody", content=REMOVE_GENDER, headers=PATCH_HEADERS)
    assert_outcome(response, 404, "not-found")


async def test_conditional_patch_with_several_matches_is_412(client: httpx.AsyncClient) -> None:
    a, b = await create(client), await create(client)
    response = await client.patch(f"/fhir/Patient?_id={a['id']},{b['id']}", content=REMOVE_GENDER,
                                  headers=PATCH_HEADERS)
    assert_outcome(response, 412, "multiple-matches")
    assert (await client.get(f"/fhir/Patient/{a['id']}")).json()["meta"]["versionId"] == "1"
