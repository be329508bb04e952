"""Content negotiation (http.html#mime-type, #parameters): _format, Accept, _pretty, Prefer: return."""

from __future__ import annotations

import httpx
import pytest

from tests.api.support import assert_outcome, create, patient

ACCEPT_CASES = [
    ("application/fhir+json", "application/fhir+json"),
    ("application/json", "application/json"),
    ("application/fhir+json; fhirVersion=4.0", "application/fhir+json"),
    ("application/json, application/fhir+json;q=0.9", "application/fhir+json"),
    ("*/*", "application/fhir+json"),
    ("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", "application/fhir+json"),
]


@pytest.mark.parametrize(("accept", "media"), ACCEPT_CASES)
async def test_json_accept_headers_are_served(client: httpx.AsyncClient, accept: str, media: str) -> None:
    rid = (await create(client))["id"]
    response = await client.get(f"/fhir/Patient/{rid}", headers={"Accept": accept})
    assert response.status_code == 200
    assert response.headers["content-type"] == f"{media}; charset=utf-8"


@pytest.mark.parametrize("fmt", ["json", "application/json", "application/fhir+json", "application/fhir%2Bjson",
                                 "application/json+fhir"])
async def test_json_format_parameters_are_served(client: httpx.AsyncClient, fmt: str) -> None:
    """``_format=application/fhir+json`` written unencoded arrives as ``application/fhir json``: accept it."""
    rid = (await create(client))["id"]
    response = await client.get(f"/fhir/Patient/{rid}?_format={fmt}", headers={"Accept": "application/xml"})
    assert response.status_code == 200, response.text
    assert response.json()["id"] == rid


@pytest.mark.parametrize(("query", "accept"), [
    ("", "application/fhir+xml"), ("", "application/xml"), ("", "text/xml"), ("", "text/turtle"),
    ("?_format=xml", None), ("?_format=application/fhir%2Bxml", None), ("?_format=ttl", None),
])
async def test_xml_or_other_formats_return_406(client: httpx.AsyncClient, query: str, accept: str | None) -> None:
    rid = (await create(client))["id"]
    headers = {"Accept": accept} if accept else {}
    for path in (f"/fhir/Patient/{rid}{query}", f"/fhir/metadata{query}", f"/fhir/_history{query}"):
        response = await client.get(path, headers=headers)
        assert_outcome(response, 406, "not-supported")
        assert response.headers["content-type"].startswith("application/fhir+json")


async def test_pretty_indents_and_default_is_compact(client: httpx.AsyncClient) -> None:
    rid = (await create(client))["id"]
    compact = await client.get(f"/fhir/Patient/{rid}")
    pretty = await client.get(f"/fhir/Patient/{rid}?_pretty=true")
    assert b"\n" not in compact.content
    assert pretty.content.startswith(b'{\n  "resourceType"')
    assert pretty.json() == compact.json()


PREFER_CASES = [
    ("return=minimal", "empty"),
    ("return=representation", "Patient"),
    ("return=OperationOutcome", "OperationOutcome"),
    ("return=operationoutcome", "OperationOutcome"),
    ("return=minimal; handling=strict", "empty"),
    ("respond-async", "Patient"),
    ("return=nonsense", "Patient"),
    (None, "Patient"),
]


@pytest.mark.parametrize(("prefer", "expected"), PREFER_CASES)
async def test_prefer_return_on_create_and_update(client: httpx.AsyncClient, prefer: str | None,
                                                  expected: str) -> None:
    headers = {"Prefer": prefer} if prefer else {}
    created = await client.post("/fhir/Patient", json=patient(), headers=headers)
    rid = created.headers["location"].split("/")[-3]
    updated = await client.put(f"/fhir/Patient/{rid}", json=patient(id=rid), headers=headers)
    for response, status in ((created, 201), (updated, 200)):
        assert response.status_code == status
        assert response.headers["etag"] and response.headers["location"]
        if expected == "empty":
            assert response.content == b""
        else:
            assert response.json()["resourceType"] == expected
    if expected == "OperationOutcome":
        assert created.json()["issue"][0]["code"] == "informational"
