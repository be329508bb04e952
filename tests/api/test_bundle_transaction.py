"""Transaction Bundles (http.html#transaction, bundle.html#transaction): all or nothing, the spec's processing
order, temporary ids, conditional entries and references, per-entry preconditions, the response Bundle."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.api.bundle_support import (
    StoreFile,
    assert_entry_error,
    entry,
    identifier,
    json_patch,
    observation,
    post_bundle,
    ref_id,
    transaction,
)
from tests.api.support import create, patient

PATIENT_UUID = "urn:uuid:4d1b1f5e-7a3b-4c55-9a43-6f0f8a8e2c11"
BINARY_UUID = "urn:uuid:a3b5d4ce-2f0e-4d5b-8a59-0e4b7d8b9f21"


@pytest.fixture
def store_file(tmp_path: Path) -> StoreFile:
    return StoreFile(tmp_path / "fhir.sqlite3")


async def history_total(client: httpx.AsyncClient) -> int:
    response = await client.get("/fhir/_history")
    assert response.status_code == 200, response.text
    return int(response.json()["total"])


# -- success: creation, temporary ids, the response ------------------------------------------------------------


async def test_transaction_rewrites_urn_uuid_references_at_every_depth(client: httpx.AsyncClient) -> None:
    document = {
        "resourceType": "DocumentReference",
        "status": "current",
        "subject": {"reference": PATIENT_UUID},
        "text": {"status": "generated",
                 "div": f'<div xmlns="http://www.w3.org/1999/xhtml"><a href="{PATIENT_UUID}">patient</a></div>'},
        "context": {"related": [{"reference": PATIENT_UUID}]},
        "extension": [{"url": "https://example.org/fhir/StructureDefinition/about",
                       "valueReference": {"reference": PATIENT_UUID}}],
        "content": [{"attachment": {"contentType": "text/plain", "url": BINARY_UUID}}],
    }
    bundle = transaction(
        entry("POST", "DocumentReference", document, "urn:uuid:6a9c4f1e-0d44-4a8e-b3f6-7b1e9d2a5c30"),
        entry("POST", "Patient", patient(), PATIENT_UUID),
        entry("POST", "Binary", {"resourceType": "Binary", "contentType": "text/plain", "data": "aGk="},
              BINARY_UUID),
    )
    response = await post_bundle(client, bundle)
    assert response.status_code == 200, response.text
    doc_entry, patient_entry, binary_entry = response.json()["entry"]
    patient_ref = f"Patient/{ref_id(patient_entry['response']['location'])}"
    binary_ref = f"Binary/{ref_id(binary_entry['response']['location'])}"
    stored = (await client.get(f"/fhir/{doc_entry['response']['location'].rsplit('/_history', 1)[0]}")).json()
    assert stored["subject"]["reference"] == patient_ref
    assert stored["context"]["related"][0]["reference"] == patient_ref
    assert stored["extension"][0]["valueReference"]["reference"] == patient_ref
    assert stored["content"][0]["attachment"]["url"] == binary_ref
    assert f'href="{patient_ref}"' in stored["text"]["div"]
    assert "urn:uuid" not in str(stored)


async def test_urn_oid_full_urls_are_rewritten_even_when_one_oid_prefixes_another(
        client: httpx.AsyncClient) -> None:
    short, long = "urn:oid:1.2.3.4", "urn:oid:1.2.3.45"
    div = f'<div xmlns="http://www.w3.org/1999/xhtml"><a href="{short}">a</a> <a href="{long}">b</a></div>'
    group = {"resourceType": "Group", "type": "person", "actual": True,
             "text": {"status": "generated", "div": div},
             "member": [{"entity": {"reference": short}}, {"entity": {"reference": long}}]}
    bundle = transaction(entry("POST", "Patient", patient(), short), entry("POST", "Patient", patient(), long),
                         entry("POST", "Group", group))
    response = await post_bundle(client, bundle)
    assert response.status_code == 200, response.text
    first, second, created = response.json()["entry"]
    a = f"Patient/{ref_id(first['response']['location'])}"
    b = f"Patient/{ref_id(second['response']['location'])}"
    stored = created["resource"]
    assert [m["entity"]["reference"] for m in stored["member"]] == [a, b]
    assert f'href="{a}"' in stored["text"]["div"] and f'href="{b}"' in stored["text"]["div"]


async def test_response_lists_entries_in_request_order_with_status_location_etag_and_last_modified(
        client: httpx.AsyncClient) -> None:
    kept, doomed = await create(client), await create(client)
    bundle = transaction(
        entry("GET", f"Patient/{kept['id']}"),
        entry("PUT", "Patient/put-1", patient(id="put-1")),
        entry("POST", "Patient", patient()),
        entry("DELETE", f"Patient/{doomed['id']}"),
    )
    response = await post_bundle(client, bundle)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["resourceType"] == "Bundle" and body["type"] == "transaction-response"
    read, put, post, delete = body["entry"]
    assert read["response"]["status"].startswith("200") and read["resource"]["id"] == kept["id"]
    assert read["response"]["etag"] == 'W/"1"' and read["response"]["lastModified"]
    assert put["response"]["status"].startswith("201")
    assert put["response"]["location"] == "Patient/put-1/_history/1"
    assert put["response"]["etag"] == 'W/"1"' and put["response"]["lastModified"]
    assert put["resource"]["id"] == "put-1" and put["fullUrl"].endswith("/fhir/Patient/put-1")
    assert post["response"]["status"].startswith("201") and post["response"]["location"].startswith("Patient/")
    assert post["resource"]["id"] == ref_id(post["response"]["location"])
    assert delete["response"]["status"].startswith("204") and delete["response"]["etag"] == 'W/"2"'


async def test_entries_are_processed_delete_post_put_then_get(client: httpx.AsyncClient) -> None:
    doomed = await create(client)
    bundle = transaction(
        entry("GET", "Patient/put-1"),
        entry("PUT", "Patient/put-1", patient(id="put-1")),
        entry("POST", "Patient", patient()),
        entry("DELETE", f"Patient/{doomed['id']}"),
    )
    response = await post_bundle(client, bundle)
    assert response.status_code == 200, response.text
    read, put, post, delete = response.json()["entry"]
    # the GET, first in the request, ran after the PUT that created what it reads
    assert read["response"]["status"].startswith("200")
    assert read["resource"]["id"] == "put-1"
    history = (await client.get("/fhir/_history")).json()["entry"]
    newest_first = [(h["request"]["method"], h["fullUrl"].rsplit("/", 1)[1]) for h in history[:3]]
    assert newest_first == [("PUT", "put-1"), ("POST", ref_id(post["response"]["location"])),
                            ("DELETE", doomed["id"])]


@pytest.mark.parametrize(("prefer", "has_resource", "has_outcome"), [
    ("return=representation", True, False),
    ("return=minimal", False, False),
    ("return=OperationOutcome", False, True),
])
async def test_prefer_header_chooses_what_each_write_entry_returns(
        client: httpx.AsyncClient, prefer: str, has_resource: bool, has_outcome: bool) -> None:
    response = await post_bundle(client, transaction(entry("POST", "Patient", patient())), prefer=prefer)
    assert response.status_code == 200, response.text
    created = response.json()["entry"][0]
    assert ("resource" in created) is has_resource
    assert ("outcome" in created["response"]) is has_outcome
    assert created["response"]["location"].startswith("Patient/")
    if has_outcome:
        assert created["response"]["outcome"]["resourceType"] == "OperationOutcome"


async def test_get_entries_see_versions_written_earlier_in_the_same_transaction(
        client: httpx.AsyncClient) -> None:
    bundle = transaction(entry("PUT", "Patient/v", patient(id="v")), entry("GET", "Patient/v/_history/1"),
                         entry("GET", "Patient?_id=v"))
    response = await post_bundle(client, bundle)
    assert response.status_code == 200, response.text
    _, vread, search = response.json()["entry"]
    assert vread["response"]["status"].startswith("200") and vread["resource"]["id"] == "v"
    assert [e["resource"]["id"] for e in search["resource"]["entry"]] == ["v"]


async def test_head_entries_answer_without_a_body(client: httpx.AsyncClient) -> None:
    existing = await create(client)
    response = await post_bundle(client, transaction(entry("HEAD", f"Patient/{existing['id']}")))
    assert response.status_code == 200, response.text
    head = response.json()["entry"][0]
    assert head["response"]["status"].startswith("200") and head["response"]["etag"] == 'W/"1"'
    assert "resource" not in head


# -- all or nothing -----------------------------------------------------------------------------------------------


async def test_a_failing_entry_leaves_no_resource_history_or_index_row(
        client: httpx.AsyncClient, store_file: StoreFile) -> None:
    kept = await create(client, patient(identifier=identifier("kept")))
    before_rows, before_history = store_file.counts(), await history_total(client)
    bundle = transaction(
        entry("POST", "Patient", patient(identifier=identifier("new")), PATIENT_UUID),
        entry("POST", "Observation", observation(PATIENT_UUID)),
        entry("PUT", "Patient/fresh", patient(id="fresh")),
        entry("PUT", f"Patient/{kept['id']}", patient(id=kept["id"], gender="male")),
        entry("DELETE", f"Patient/{kept['id']}-other"),
        entry("PUT", f"Patient/{kept['id']}x", patient(id=f"{kept['id']}x"), ifMatch='W/"7"'),
    )
    response = await post_bundle(client, bundle)
    issue = assert_entry_error(response, 412, 5)
    assert issue["code"] == "conflict"
    assert store_file.counts() == before_rows
    assert await history_total(client) == before_history
    assert (await client.get("/fhir/Patient/fresh")).status_code == 404
    assert (await client.get(f"/fhir/Patient/{kept['id']}")).json()["gender"] == "female"
    assert (await client.get("/fhir/Observation")).json().get("total", 0) == 0


async def test_a_reference_check_failing_after_every_write_still_rolls_everything_back(
        client: httpx.AsyncClient, store_file: StoreFile) -> None:
    before = store_file.counts()
    bundle = transaction(entry("POST", "Patient", patient()),
                         entry("POST", "Observation", observation("Patient/nowhere")))
    response = await post_bundle(client, bundle)
    issue = assert_entry_error(response, 400, 1)
    assert issue["code"] == "not-found"
    assert store_file.counts() == before
    assert await history_total(client) == 0


async def test_store_file_shows_the_rows_of_a_committed_transaction(
        client: httpx.AsyncClient, store_file: StoreFile) -> None:
    if not store_file.available:
        pytest.skip("looks into the SQLite file")
    response = await post_bundle(client, transaction(
        entry("POST", "Patient", patient(identifier=identifier("a")), PATIENT_UUID),
        entry("POST", "Observation", observation(PATIENT_UUID))))
    assert response.status_code == 200, response.text
    counts = store_file.counts()
    assert counts["resource"] == 2 and counts["history"] == 2
    index_rows = [n for table, n in counts.items() if table.startswith("idx")]
    assert not index_rows or sum(index_rows) > 0  # (before the search engine there were no index tables)


# -- identities: duplicates -----------------------------------------------------------------------------------------


async def test_two_entries_touching_the_same_resource_fail_the_transaction(client: httpx.AsyncClient) -> None:
    bundle = transaction(entry("PUT", "Patient/a", patient(id="a")), entry("DELETE", "Patient/a"))
    issue = assert_entry_error(await post_bundle(client, bundle), 400, 1)
    assert issue["code"] == "duplicate"
    assert (await client.get("/fhir/Patient/a")).status_code == 404


async def test_a_conditional_update_resolving_to_a_resource_another_entry_touches_fails(
        client: httpx.AsyncClient) -> None:
    await client.put("/fhir/Patient/a", json=patient(id="a"))
    bundle = transaction(entry("PUT", "Patient?_id=a", patient(gender="male")),
                         entry("DELETE", "Patient/a"))
    response = await post_bundle(client, bundle)
    assert response.status_code == 400, response.text
    assert response.json()["issue"][0]["code"] == "duplicate"
    assert (await client.get("/fhir/Patient/a")).json()["meta"]["versionId"] == "1"


async def test_repeated_full_urls_fail_the_transaction(client: httpx.AsyncClient) -> None:
    bundle = transaction(entry("POST", "Patient", patient(), PATIENT_UUID),
                         entry("POST", "Patient", patient(), PATIENT_UUID))
    issue = assert_entry_error(await post_bundle(client, bundle), 400, 1)
    assert issue["code"] == "duplicate"


# -- conditional entries and per-entry preconditions -----------------------------------------------------------------


async def test_if_none_exist_reuses_the_match_and_references_point_at_it(client: httpx.AsyncClient) -> None:
    existing = await create(client)
    bundle = transaction(entry("POST", "Patient", patient(), PATIENT_UUID, ifNoneExist=f"_id={existing['id']}"),
                         entry("POST", "Observation", observation(PATIENT_UUID)))
    response = await post_bundle(client, bundle)
    assert response.status_code == 200, response.text
    matched, created = response.json()["entry"]
    assert matched["response"]["status"].startswith("200")
    assert matched["response"]["location"] == f"Patient/{existing['id']}/_history/1"
    assert created["resource"]["subject"]["reference"] == f"Patient/{existing['id']}"


async def test_if_none_exist_by_identifier_creates_once(client: httpx.AsyncClient) -> None:
    bundle = transaction(entry("POST", "Patient", patient(identifier=identifier("mrn-1")),
                               ifNoneExist="identifier=https://example.org/mrn|mrn-1"))
    first = await post_bundle(client, bundle)
    second = await post_bundle(client, bundle)
    assert first.json()["entry"][0]["response"]["status"].startswith("201"), first.text
    assert second.json()["entry"][0]["response"]["status"].startswith("200"), second.text
    assert first.json()["entry"][0]["response"]["location"] == second.json()["entry"][0]["response"]["location"]


async def test_conditional_update_and_delete_entries_resolve_their_targets(client: httpx.AsyncClient) -> None:
    doomed, changed = await create(client), await create(client)
    bundle = transaction(
        entry("DELETE", f"Patient?_id={doomed['id']}"),
        entry("PUT", f"Patient?_id={changed['id']}", patient(gender="male")),
        entry("PUT", "Patient?_id=brand-new", patient(id="brand-new")),
    )
    response = await post_bundle(client, bundle)
    assert response.status_code == 200, response.text
    deleted, updated, created = (e["response"] for e in response.json()["entry"])
    assert deleted["status"].startswith("204")
    assert updated["location"] == f"Patient/{changed['id']}/_history/2"
    assert created["status"].startswith("201") and created["location"] == "Patient/brand-new/_history/1"
    assert (await client.get(f"/fhir/Patient/{doomed['id']}")).status_code == 410
    assert (await client.get(f"/fhir/Patient/{changed['id']}")).json()["gender"] == "male"


async def test_a_conditional_update_entry_without_a_match_does_not_overwrite_the_id_it_carries(
        client: httpx.AsyncClient) -> None:
    bystander = await create(client)
    bundle = transaction(entry("PUT", "Patient?_id=nobody", {**bystander, "gender": "male"}))
    issue = assert_entry_error(await post_bundle(client, bundle), 409, 0)
    assert issue["code"] == "conflict"
    assert (await client.get(f"/fhir/Patient/{bystander['id']}")).json()["meta"]["versionId"] == "1"


@pytest.mark.parametrize(("if_match", "status"), [('W/"1"', 200), ('W/"2"', 412)])
async def test_if_match_is_honoured_per_entry(client: httpx.AsyncClient, if_match: str, status: int) -> None:
    existing = await create(client)
    bundle = transaction(entry("PUT", f"Patient/{existing['id']}", {**existing, "gender": "male"},
                               ifMatch=if_match),
                         entry("POST", "Patient", patient()))
    response = await post_bundle(client, bundle)
    assert response.status_code == status, response.text
    if status == 412:
        assert_entry_error(response, 412, 0)
    assert await history_total(client) == (1 if status == 412 else 3)


async def test_if_match_on_delete_and_patch_entries(client: httpx.AsyncClient) -> None:
    a, b = await create(client), await create(client)
    ok = transaction(entry("DELETE", f"Patient/{a['id']}", ifMatch='W/"1"'),
                     entry("PATCH", f"Patient/{b['id']}", json_patch([{"op": "replace", "path": "/gender",
                                                                       "value": "male"}]), ifMatch='W/"1"'))
    response = await post_bundle(client, ok)
    assert response.status_code == 200, response.text
    stale = transaction(entry("PATCH", f"Patient/{b['id']}", json_patch([{"op": "remove", "path": "/gender"}]),
                              ifMatch='W/"1"'))
    assert_entry_error(await post_bundle(client, stale), 412, 0)


async def test_if_none_match_star_on_put_refuses_to_overwrite(client: httpx.AsyncClient) -> None:
    existing = await create(client)
    bundle = transaction(entry("PUT", f"Patient/{existing['id']}", existing, ifNoneMatch="*"))
    assert_entry_error(await post_bundle(client, bundle), 412, 0)
    fresh = transaction(entry("PUT", "Patient/fresh", patient(id="fresh"), ifNoneMatch="*"))
    assert (await post_bundle(client, fresh)).status_code == 200


async def test_if_none_match_and_if_modified_since_on_get_answer_304(client: httpx.AsyncClient) -> None:
    existing = await create(client)
    bundle = transaction(
        entry("GET", f"Patient/{existing['id']}", ifNoneMatch='W/"1"'),
        entry("GET", f"Patient/{existing['id']}", ifModifiedSince="2999-01-01T00:00:00Z"),
        entry("GET", f"Patient/{existing['id']}", ifModifiedSince="2000-01-01T00:00:00Z"),
    )
    response = await post_bundle(client, bundle)
    assert response.status_code == 200, response.text
    unchanged, unmodified, modified = response.json()["entry"]
    assert unchanged["response"]["status"].startswith("304") and "resource" not in unchanged
    assert unmodified["response"]["status"].startswith("304") and "resource" not in unmodified
    assert modified["response"]["status"].startswith("200") and modified["resource"]["id"] == existing["id"]


# -- conditional references ------------------------------------------------------------------------------------------


async def test_conditional_reference_is_resolved_to_the_single_match(client: httpx.AsyncClient) -> None:
    existing = await create(client)
    obs = observation(f"Patient?_id={existing['id']}")
    obs["performer"] = [{"reference": f"Patient?_id={existing['id']}"}]
    response = await post_bundle(client, transaction(entry("POST", "Observation", obs)))
    assert response.status_code == 200, response.text
    stored = response.json()["entry"][0]["resource"]
    assert stored["subject"]["reference"] == f"Patient/{existing['id']}"
    assert stored["performer"][0]["reference"] == f"Patient/{existing['id']}"


async def test_conditional_reference_by_identifier_is_resolved(client: httpx.AsyncClient) -> None:
    existing = await create(client, patient(identifier=identifier("mrn-7")))
    obs = observation("Patient?identifier=https://example.org/mrn|mrn-7")
    response = await post_bundle(client, transaction(entry("POST", "Observation", obs)))
    assert response.status_code == 200, response.text
    assert response.json()["entry"][0]["resource"]["subject"]["reference"] == f"Patient/{existing['id']}"


async def test_conditional_reference_with_no_match_fails_the_transaction(
        client: httpx.AsyncClient, store_file: StoreFile) -> None:
    bundle = transaction(entry("POST", "Patient", patient()),
                         entry("POST", "Observation", observation("Patient?_id=nobody")))
    issue = assert_entry_error(await post_bundle(client, bundle), 412, 1)
    assert issue["code"] == "not-found"
    assert await history_total(client) == 0


async def test_conditional_reference_with_several_matches_fails_the_transaction(client: httpx.AsyncClient) -> None:
    a, b = await create(client), await create(client)
    bundle = transaction(entry("POST", "Observation", observation(f"Patient?_id={a['id']},{b['id']}")))
    issue = assert_entry_error(await post_bundle(client, bundle), 412, 0)
    assert issue["code"] == "multiple-matches"


async def test_conditional_reference_by_identifier_with_several_matches_fails(client: httpx.AsyncClient) -> None:
    await create(client, patient(identifier=identifier("twin")))
    await create(client, patient(identifier=identifier("twin")))
    bundle = transaction(entry("POST", "Observation", observation("Patient?identifier=https://example.org/mrn|twin")))
    issue = assert_entry_error(await post_bundle(client, bundle), 412, 0)
    assert issue["code"] == "multiple-matches"


# -- PATCH entries -----------------------------------------------------------------------------------------------------


async def test_patch_entry_applies_a_json_patch_carried_in_a_binary(client: httpx.AsyncClient) -> None:
    existing = await create(client)
    ops = [{"op": "replace", "path": "/gender", "value": "male"}, {"op": "add", "path": "/active", "value": True}]
    response = await post_bundle(client, transaction(entry("PATCH", f"Patient/{existing['id']}", json_patch(ops))))
    assert response.status_code == 200, response.text
    result = response.json()["entry"][0]
    assert result["response"]["location"] == f"Patient/{existing['id']}/_history/2"
    stored = (await client.get(f"/fhir/Patient/{existing['id']}")).json()
    assert stored["gender"] == "male" and stored["active"] is True


@pytest.mark.parametrize(("patch", "status"), [
    (json_patch([{"op": "test", "path": "/gender", "value": "male"}]), 422),
    (json_patch([{"op": "remove", "path": "/no/such/path"}]), 422),
    (json_patch([{"op": "explode", "path": "/gender"}]), 422),
    ({"resourceType": "Binary", "contentType": "application/json-patch+json", "data": "%%%not base64"}, 400),
    ({"resourceType": "Binary", "contentType": "application/json-patch+json", "data": 42}, 400),
    ({"resourceType": "Binary", "contentType": "application/fhir+json", "data": "W10="}, 422),
    (json_patch([{"op": "replace", "path": "/gender", "value": 7}]), 400),
    (json_patch([{"op": "replace", "path": "/id", "value": "other"}]), 400),
])
async def test_a_bad_patch_entry_fails_the_transaction_naming_the_entry(
        client: httpx.AsyncClient, patch: dict[str, object], status: int) -> None:
    existing = await create(client)
    bundle = transaction(entry("POST", "Patient", patient()), entry("PATCH", f"Patient/{existing['id']}", patch))
    assert_entry_error(await post_bundle(client, bundle), status, 1)
    assert await history_total(client) == 1


async def test_patch_entry_on_a_missing_resource_is_404(client: httpx.AsyncClient) -> None:
    bundle = transaction(entry("PATCH", "Patient/ghost", json_patch([{"op": "remove", "path": "/gender"}])))
    assert_entry_error(await post_bundle(client, bundle), 404, 0)
