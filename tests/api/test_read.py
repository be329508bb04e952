"""read and vread (http.html#read, #vread), conditional reads, _summary/_elements, stored bytes served as-is."""

from __future__ import annotations

from datetime import timedelta
from email.utils import format_datetime, parsedate_to_datetime

import httpx
import pytest

from tests.api.support import SUBSETTED, assert_outcome, create, patient


async def test_read_returns_current_version_with_etag_and_last_modified(client: httpx.AsyncClient) -> None:
    created = await create(client)
    response = await client.get(f"/fhir/Patient/{created['id']}")
    assert response.status_code == 200
    assert response.json() == created
    assert response.headers["etag"] == 'W/"1"'
    assert parsedate_to_datetime(response.headers["last-modified"])


async def test_read_of_unknown_resource_returns_404(client: httpx.AsyncClient) -> None:
    assert_outcome(await client.get("/fhir/Patient/unknown"), 404, "not-found")


async def test_read_of_deleted_resource_returns_410(client: httpx.AsyncClient) -> None:
    created = await create(client)
    await client.delete(f"/fhir/Patient/{created['id']}")
    assert_outcome(await client.get(f"/fhir/Patient/{created['id']}"), 410, "deleted")


async def test_vread_returns_each_stored_version(client: httpx.AsyncClient) -> None:
    created = await create(client)
    rid = created["id"]
    await client.put(f"/fhir/Patient/{rid}", json=patient(id=rid, gender="male"))
    first = await client.get(f"/fhir/Patient/{rid}/_history/1")
    second = await client.get(f"/fhir/Patient/{rid}/_history/2")
    assert (first.json()["gender"], second.json()["gender"]) == ("female", "male")
    assert (first.headers["etag"], second.headers["etag"]) == ('W/"1"', 'W/"2"')


@pytest.mark.parametrize("vid", ["3", "0", "abc", "-1", "1.0"])
async def test_vread_of_missing_version_returns_404(client: httpx.AsyncClient, vid: str) -> None:
    created = await create(client)
    assert_outcome(await client.get(f"/fhir/Patient/{created['id']}/_history/{vid}"), 404, "not-found")


async def test_vread_of_the_deletion_version_returns_410(client: httpx.AsyncClient) -> None:
    created = await create(client)
    await client.delete(f"/fhir/Patient/{created['id']}")
    assert_outcome(await client.get(f"/fhir/Patient/{created['id']}/_history/2"), 410, "deleted")
    assert (await client.get(f"/fhir/Patient/{created['id']}/_history/1")).status_code == 200


@pytest.mark.parametrize(("if_none_match", "status"), [
    ('W/"1"', 304), ('"1"', 304), ("*", 304), ('W/"0", W/"1"', 304), ('W/"2"', 200), ("junk", 200),
])
async def test_if_none_match_on_read(client: httpx.AsyncClient, if_none_match: str, status: int) -> None:
    created = await create(client)
    response = await client.get(f"/fhir/Patient/{created['id']}", headers={"If-None-Match": if_none_match})
    assert response.status_code == status
    assert response.headers["etag"] == 'W/"1"'
    if status == 304:
        assert response.content == b""


async def test_if_modified_since_on_read(client: httpx.AsyncClient) -> None:
    created = await create(client)
    url = f"/fhir/Patient/{created['id']}"
    modified = parsedate_to_datetime((await client.get(url)).headers["last-modified"])
    same = await client.get(url, headers={"If-Modified-Since": format_datetime(modified, usegmt=True)})
    later = await client.get(url, headers={"If-Modified-Since": format_datetime(modified + timedelta(days=1),
                                                                                usegmt=True)})
    earlier = await client.get(url, headers={"If-Modified-Since": format_datetime(modified - timedelta(seconds=1),
                                                                                  usegmt=True)})
    junk = await client.get(url, headers={"If-Modified-Since": "last tuesday"})
    assert [same.status_code, later.status_code, earlier.status_code, junk.status_code] == [304, 304, 200, 200]


async def test_stored_decimals_come_back_byte_for_byte(client: httpx.AsyncClient) -> None:
    sent = (b'{"resourceType":"Observation","status":"final","code":{"text":"weight"},'
            b'"valueQuantity":{"value":1.50,"unit":"kg"},"component":[{"code":{"text":"x"},'
            b'"valueQuantity":{"value":1.0e2}},{"code":{"text":"y"},"valueQuantity":{"value":0.000100}}]}')
    created = await client.post("/fhir/Observation", content=sent,
                                headers={"Content-Type": "application/fhir+json"})
    assert created.status_code == 201, created.text
    for response in (created, await client.get(f"/fhir/Observation/{created.json()['id']}")):
        assert b'"value":1.50,' in response.content
        assert b'"value":1.0e2}' in response.content
        assert b'"value":0.000100}' in response.content


async def test_pretty_output_keeps_decimal_text(client: httpx.AsyncClient) -> None:
    sent = b'{"resourceType":"Observation","status":"final","code":{"text":"t"},"valueQuantity":{"value":37.50}}'
    created = await client.post("/fhir/Observation", content=sent, headers={"Content-Type": "application/json"})
    response = await client.get(f"/fhir/Observation/{created.json()['id']}?_pretty=true")
    assert b'\n  "resourceType": "Observation",\n' in response.content
    assert b'"value": 37.50' in response.content


def _tags(resource: dict) -> list[str]:  # type: ignore[type-arg]
    return [t["code"] for t in resource.get("meta", {}).get("tag", [])]


SUMMARY_CASES = [
    # (_summary, elements present, elements absent, subsetted)
    ("true", {"id", "meta", "gender", "birthDate", "name"}, {"text", "photo", "communication"}, True),
    ("text", {"id", "meta", "text"}, {"gender", "name", "photo"}, True),
    ("data", {"id", "meta", "gender", "name", "photo", "communication"}, {"text"}, True),
    ("false", {"id", "meta", "text", "gender", "name", "photo", "communication"}, set(), False),
]


@pytest.mark.parametrize(("summary", "present", "absent", "subsetted"), SUMMARY_CASES)
async def test_summary_on_read(client: httpx.AsyncClient, summary: str, present: set[str], absent: set[str],
                               subsetted: bool) -> None:
    full = patient(text={"status": "generated", "div": '<div xmlns="http://www.w3.org/1999/xhtml">Ann</div>'},
                   name=[{"family": "Lee"}], photo=[{"contentType": "image/png"}],
                   communication=[{"language": {"text": "en"}}])
    created = await create(client, full)
    for url in (f"/fhir/Patient/{created['id']}", f"/fhir/Patient/{created['id']}/_history/1"):
        body = (await client.get(f"{url}?_summary={summary}")).json()
        assert present <= body.keys(), body
        assert not absent & body.keys(), body
        assert (SUBSETTED in _tags(body)) is subsetted


async def test_summary_count_on_read_is_rejected(client: httpx.AsyncClient) -> None:
    """``_summary=count`` is search-only (search.html#summary): a read cannot honour it."""
    created = await create(client)
    issue = assert_outcome(await client.get(f"/fhir/Patient/{created['id']}?_summary=count"), 400, "invalid")
    assert issue["expression"] == ["_summary"]


async def test_elements_on_read_keeps_named_and_mandatory_elements(client: httpx.AsyncClient) -> None:
    created = await create(client, {"resourceType": "Observation", "status": "final", "code": {"text": "bp"},
                                    "valueString": "high", "note": [{"text": "n"}], "issued": "2020-01-01T00:00:00Z"})
    response = await client.get(f"/fhir/Observation/{created['id']}?_elements=value,note")
    body = response.json()
    assert set(body) == {"resourceType", "id", "meta", "status", "code", "valueString", "note"}
    assert SUBSETTED in _tags(body)


async def test_summary_keeps_existing_tags(client: httpx.AsyncClient) -> None:
    tag = {"system": "http://example.org", "code": "keep"}
    created = await create(client, patient(meta={"tag": [tag]}))
    body = (await client.get(f"/fhir/Patient/{created['id']}?_summary=true")).json()
    assert _tags(body) == ["keep", SUBSETTED]
