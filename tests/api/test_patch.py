"""PATCH /fhir/Type/id with JSON Patch (http.html#patch, RFC 6902)."""

from __future__ import annotations

from typing import Any

import httpx
import orjson
import pytest

from tests.api.support import assert_outcome, create, patient

JSON_PATCH = "application/json-patch+json"


async def send_patch(client: httpx.AsyncClient, url: str, operations: Any, content_type: str = JSON_PATCH,
                     **headers: str) -> httpx.Response:
    return await client.patch(url, content=orjson.dumps(operations),
                              headers={"content-type": content_type, **headers})


async def version_of(client: httpx.AsyncClient, url: str) -> str:
    return str((await client.get(url)).json()["meta"]["versionId"])


async def test_patch_applies_the_operations_and_makes_a_new_version(client: httpx.AsyncClient) -> None:
    existing = await create(client, patient(name=[{"family": "Old"}]))
    url = f"/fhir/Patient/{existing['id']}"
    ops = [{"op": "replace", "path": "/name/0/family", "value": "New"},
           {"op": "add", "path": "/active", "value": True},
           {"op": "remove", "path": "/birthDate"}]
    response = await send_patch(client, url, ops)
    assert response.status_code == 200, response.text
    assert response.headers["etag"] == 'W/"2"'
    body = response.json()
    assert body["name"][0]["family"] == "New" and body["active"] is True and "birthDate" not in body
    assert body["meta"]["versionId"] == "2"
    assert (await client.get(url)).json() == body
    history = (await client.get(f"{url}/_history")).json()["entry"]
    assert history[0]["request"]["method"] == "PATCH"


@pytest.mark.parametrize(("if_match", "status"), [('W/"1"', 200), ('W/"2"', 412)])
async def test_patch_honours_if_match(client: httpx.AsyncClient, if_match: str, status: int) -> None:
    existing = await create(client)
    url = f"/fhir/Patient/{existing['id']}"
    response = await send_patch(client, url, [{"op": "replace", "path": "/gender", "value": "male"}],
                                **{"if-match": if_match})
    if status == 412:
        assert_outcome(response, 412, "conflict")
        assert await version_of(client, url) == "1"
    else:
        assert response.status_code == 200, response.text


@pytest.mark.parametrize("operations", [
    [{"op": "test", "path": "/gender", "value": "male"}],
    [{"op": "remove", "path": "/nothing/here"}],
    [{"op": "replace", "path": "/name/3/family", "value": "x"}],
    [{"op": "move", "from": "/missing", "path": "/gender"}],
    [{"op": "explode", "path": "/gender"}],
    [{"path": "/gender"}],
    ["remove /gender"],
])
async def test_a_patch_that_cannot_be_applied_is_422_and_changes_nothing(
        client: httpx.AsyncClient, operations: Any) -> None:
    existing = await create(client)
    url = f"/fhir/Patient/{existing['id']}"
    assert_outcome(await send_patch(client, url, operations), 422, "processing")
    assert await version_of(client, url) == "1"


@pytest.mark.parametrize("document", [{"op": "remove", "path": "/gender"}, "remove", 7])
async def test_a_patch_document_that_is_not_an_array_is_400(client: httpx.AsyncClient, document: Any) -> None:
    existing = await create(client)
    assert_outcome(await send_patch(client, f"/fhir/Patient/{existing['id']}", document), 400, "structure")


async def test_a_body_that_is_not_json_is_400(client: httpx.AsyncClient) -> None:
    existing = await create(client)
    response = await client.patch(f"/fhir/Patient/{existing['id']}", content=b"[{",
                                  headers={"content-type": JSON_PATCH})
    assert_outcome(response, 400, "structure")


@pytest.mark.parametrize("content_type", ["application/fhir+json", "application/json", "application/xml",
                                          "text/plain"])
async def test_patch_with_another_content_type_is_415(client: httpx.AsyncClient, content_type: str) -> None:
    existing = await create(client)
    response = await send_patch(client, f"/fhir/Patient/{existing['id']}",
                                [{"op": "remove", "path": "/gender"}], content_type)
    assert_outcome(response, 415, "not-supported")


@pytest.mark.parametrize("operations", [
    [{"op": "replace", "path": "/gender", "value": 12}],
    [{"op": "add", "path": "/colour", "value": "blue"}],
    [{"op": "replace", "path": "/id", "value": "someone-else"}],
    [{"op": "replace", "path": "/resourceType", "value": "Observation"}],
])
async def test_a_patch_leaving_an_invalid_resource_is_refused(client: httpx.AsyncClient, operations: Any) -> None:
    existing = await create(client)
    url = f"/fhir/Patient/{existing['id']}"
    response = await send_patch(client, url, operations)
    assert response.status_code == 400, response.text
    assert response.json()["resourceType"] == "OperationOutcome"
    assert await version_of(client, url) == "1"


async def test_a_patch_adding_a_reference_to_a_missing_resource_is_refused(client: httpx.AsyncClient) -> None:
    existing = await create(client)
    ops = [{"op": "add", "path": "/generalPractitioner", "value": [{"reference": "Practitioner/none"}]}]
    assert_outcome(await send_patch(client, f"/fhir/Patient/{existing['id']}", ops), 400, "not-found")


async def test_patch_of_a_missing_resource_is_404_and_of_a_deleted_one_410(client: httpx.AsyncClient) -> None:
    ops = [{"op": "remove", "path": "/gender"}]
    assert_outcome(await send_patch(client, "/fhir/Patient/nobody", ops), 404, "not-found")
    existing = await create(client)
    await client.delete(f"/fhir/Patient/{existing['id']}")
    assert_outcome(await send_patch(client, f"/fhir/Patient/{existing['id']}", ops), 410, "deleted")


async def test_patch_with_prefer_minimal_returns_no_body(client: httpx.AsyncClient) -> None:
    existing = await create(client)
    response = await send_patch(client, f"/fhir/Patient/{existing['id']}", [{"op": "remove", "path": "/gender"}],
                                prefer="return=minimal")
    assert response.status_code == 200, response.text
    assert response.headers["etag"] == 'W/"2"' and not response.content
