"""What a transaction refuses (400 naming ``Bundle.entry[i]``, never a 500), the entry limit, and which Bundle
types go where: transaction/batch to the base, document/collection/message to ``/fhir/Bundle``."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from fhir_server.settings import Settings
from tests.api.bundle_support import assert_entry_error, entry, json_patch, observation, post_bundle, transaction
from tests.api.support import assert_outcome, patient

GOOD = entry("POST", "Patient", patient())

MALFORMED: list[tuple[str, Any]] = [
    ("not an object", "Patient/1"),
    ("no request", {"resource": patient()}),
    ("request not an object", {"request": "POST Patient", "resource": patient()}),
    ("unknown method", {"request": {"method": "FETCH", "url": "Patient"}}),
    ("lower-case method", {"request": {"method": "post", "url": "Patient"}, "resource": patient()}),
    ("no url", {"request": {"method": "GET"}}),
    ("url not a string", {"request": {"method": "GET", "url": 12}}),
    ("absolute url", {"request": {"method": "GET", "url": "https://elsewhere.org/fhir/Patient/1"}}),
    ("unknown type", {"request": {"method": "POST", "url": "Spaceship"}, "resource": {"resourceType": "Spaceship"}}),
    ("POST without a resource", {"request": {"method": "POST", "url": "Patient"}}),
    ("POST with a non-object resource", {"request": {"method": "POST", "url": "Patient"}, "resource": [1]}),
    ("POST to an instance", {"request": {"method": "POST", "url": "Patient/1"}, "resource": patient()}),
    ("POST to the system", {"request": {"method": "POST", "url": "_history"}, "resource": patient()}),
    ("PUT to a type", {"request": {"method": "PUT", "url": "Patient"}, "resource": patient()}),
    ("PUT to a version", {"request": {"method": "PUT", "url": "Patient/1/_history/1"}, "resource": patient(id="1")}),
    ("PATCH to a type", {"request": {"method": "PATCH", "url": "Patient"}, "resource": json_patch([])}),
    ("PUT id differs from url", {"request": {"method": "PUT", "url": "Patient/a"}, "resource": patient(id="b")}),
    ("PUT without an id", {"request": {"method": "PUT", "url": "Patient/a"}, "resource": patient()}),
    ("PUT with an invalid id", {"request": {"method": "PUT", "url": "Patient/a_b"}, "resource": patient(id="a_b")}),
    ("resourceType differs from url", {"request": {"method": "POST", "url": "Patient"},
                                       "resource": observation("Patient/1")}),
    ("invalid content", {"request": {"method": "POST", "url": "Patient"}, "resource": patient(gender=5)}),
    ("unknown element", {"request": {"method": "POST", "url": "Patient"}, "resource": patient(colour="blue")}),
    ("ifNoneExist not a string", {"request": {"method": "POST", "url": "Patient", "ifNoneExist": 1},
                                  "resource": patient()}),
    ("ifMatch not a string", {"request": {"method": "PUT", "url": "Patient/a", "ifMatch": 1},
                              "resource": patient(id="a")}),
    ("ifMatch not an etag", {"request": {"method": "PUT", "url": "Patient/a", "ifMatch": "yesterday"},
                             "resource": patient(id="a")}),
    ("ifNoneMatch not a string", {"request": {"method": "GET", "url": "Patient/a", "ifNoneMatch": ["*"]}}),
    ("ifModifiedSince not a string", {"request": {"method": "GET", "url": "Patient/a", "ifModifiedSince": 5}}),
    ("conditional delete without criteria", {"request": {"method": "DELETE", "url": "Patient?"}}),
    ("conditional update matching everything", {"request": {"method": "PUT", "url": "Patient?_count=1"},
                                                "resource": patient()}),
]


@pytest.mark.parametrize(("why", "bad"), MALFORMED, ids=[m[0] for m in MALFORMED])
async def test_a_malformed_entry_fails_the_transaction_with_400_naming_it(
        client: httpx.AsyncClient, why: str, bad: Any) -> None:
    assert (await client.put("/fhir/Patient/a", json=patient(id="a"))).status_code == 201
    response = await post_bundle(client, transaction(GOOD, GOOD, bad))
    assert response.status_code in (400, 404), f"{why}: {response.text}"
    issue = assert_entry_error(response, response.status_code, 2)
    assert issue["severity"] in ("error", "fatal")
    assert (await client.get("/fhir/_history")).json()["total"] == 1


@pytest.mark.parametrize("content", [
    pytest.param({"meta": True}, id="meta not an object"),
    pytest.param({"meta": [1]}, id="meta an array"),
    pytest.param({"text": True}, id="text not an object"),
    pytest.param({"identifier": [True]}, id="identifier item not an object"),
    pytest.param({"managingOrganization": "Organization/1"}, id="reference as a string"),
    pytest.param({"text": {"status": "generated", "div": 5}}, id="div not a string"),
    pytest.param({"birthDate": "1980-13-01"}, id="bad date"),
    pytest.param({"name": {"family": "Lee"}}, id="object where an array belongs"),
])
async def test_invalid_resource_content_in_an_entry_is_400_never_500(
        client: httpx.AsyncClient, content: dict[str, Any]) -> None:
    bad = entry("POST", "Patient", {"resourceType": "Patient", **content})
    assert_entry_error(await post_bundle(client, transaction(GOOD, bad)), 400, 1)
    assert (await client.get("/fhir/_history")).json()["total"] == 0


@pytest.mark.parametrize("body", [
    {"resourceType": "Bundle", "type": "transaction", "entry": "everything"},
    {"resourceType": "Bundle", "type": "transaction", "entry": [None]},
    {"resourceType": "Bundle", "type": "batch", "entry": {"request": {}}},
])
async def test_a_malformed_bundle_is_refused_not_crashed_on(client: httpx.AsyncClient, body: Any) -> None:
    response = await post_bundle(client, body)
    assert response.status_code in (200, 400), response.text
    if body["type"] == "transaction":
        assert response.status_code == 400


@pytest.mark.parametrize("kind", ["document", "collection", "message", "searchset", "history", None])
async def test_bundles_other_than_transaction_and_batch_are_refused_at_the_base(
        client: httpx.AsyncClient, kind: str | None) -> None:
    bundle = {"resourceType": "Bundle", "type": kind, "entry": [{"resource": patient()}]}
    assert_outcome(await post_bundle(client, bundle), 400, "code-invalid")
    assert (await client.get("/fhir/_history")).json()["total"] == 0


async def test_a_non_bundle_at_the_base_is_refused(client: httpx.AsyncClient) -> None:
    assert_outcome(await client.post("/fhir", json=patient()), 400, "invalid")


COLLECTION_ENTRIES = [
    {"fullUrl": "http://elsewhere.org/fhir/Patient/1", "resource": patient(id="1")},
    {"fullUrl": "urn:uuid:0c3151bd-1cbf-4d64-b04d-cd9187a4c6e0",
     "resource": observation("http://elsewhere.org/fhir/Patient/1")},
    {"fullUrl": "http://elsewhere.org/fhir/Observation/2", "resource": {**observation("Patient/1"), "id": "2"}},
]


@pytest.mark.parametrize("kind", ["document", "collection", "message"])
async def test_documents_collections_and_messages_are_stored_as_bundle_resources(
        client: httpx.AsyncClient, kind: str) -> None:
    bundle: dict[str, Any] = {"resourceType": "Bundle", "type": kind, "entry": COLLECTION_ENTRIES}
    if kind == "document":
        bundle["identifier"] = {"system": "https://example.org/docs", "value": "d1"}
        bundle["timestamp"] = "2024-05-01T10:00:00Z"
        bundle["entry"] = [{"fullUrl": "urn:uuid:9b5d0c1a-2f3e-4a5b-8c7d-6e5f4a3b2c1d",
                            "resource": {"resourceType": "Composition", "status": "final",
                                         "type": {"text": "summary"}, "date": "2024-05-01",
                                         "author": [{"reference": "Patient/1"}], "title": "Summary",
                                         "subject": {"reference": "Patient/1"}}}, *COLLECTION_ENTRIES]
    if kind == "message":
        bundle["entry"] = [{"fullUrl": "urn:uuid:9b5d0c1a-2f3e-4a5b-8c7d-6e5f4a3b2c1d",
                            "resource": {"resourceType": "MessageHeader",
                                         "eventCoding": {"system": "https://example.org/events", "code": "x"},
                                         "source": {"endpoint": "https://example.org/sender"}}},
                           *COLLECTION_ENTRIES]
    response = await client.post("/fhir/Bundle", json=bundle)
    assert response.status_code == 201, response.text
    stored = (await client.get(f"/fhir/Bundle/{response.json()['id']}")).json()
    assert stored["type"] == kind and len(stored["entry"]) == len(bundle["entry"])
    # the entries are content, not requests: nothing else was created
    assert (await client.get("/fhir/Patient/1")).status_code == 404
    assert (await client.get("/fhir/_history")).json()["total"] == 1


class TestEntryLimit:
    @pytest.fixture
    def settings(self, settings: Settings) -> Settings:
        return settings.with_(max_bundle_entries=3)

    @pytest.mark.parametrize("make", [transaction, lambda *e: {**transaction(*e), "type": "batch"}])
    async def test_bundles_above_the_entry_limit_are_413(self, client: httpx.AsyncClient, make: Any) -> None:
        assert_outcome(await post_bundle(client, make(GOOD, GOOD, GOOD, GOOD)), 413, "too-costly")
        assert (await client.get("/fhir/_history")).json()["total"] == 0

    async def test_bundles_at_the_entry_limit_are_processed(self, client: httpx.AsyncClient) -> None:
        response = await post_bundle(client, transaction(GOOD, GOOD, GOOD))
        assert response.status_code == 200, response.text
        assert len(response.json()["entry"]) == 3


async def test_an_empty_transaction_answers_an_empty_response(client: httpx.AsyncClient) -> None:
    response = await post_bundle(client, transaction())
    assert response.status_code == 200, response.text
    assert response.json()["type"] == "transaction-response"
    assert response.json().get("entry", []) == []
