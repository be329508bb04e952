"""Search over HTTP: the Bundle a client gets (links, modes, paging, totals, subsets) and how the request is read
(GET vs POST _search, system search, strict vs lenient)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest


async def _load(client: httpx.AsyncClient, n: int = 7) -> list[str]:
    org = await client.put("/fhir/Organization/o1", json={"resourceType": "Organization", "id": "o1", "name": "Acme"})
    assert org.status_code in (200, 201)
    ids = []
    for i in range(n):
        r = await client.post("/fhir/Patient", json={
            "resourceType": "Patient", "name": [{"family": f"Rivera{i}", "given": ["Ana"]}],
            "gender": "female" if i % 2 else "male", "birthDate": f"19{60 + i}-01-01",
            "managingOrganization": {"reference": "Organization/o1"}})
        assert r.status_code == 201, r.text
        ids.append(r.headers["location"].split("/")[-3])
    return ids


def _matches(bundle: dict[str, Any]) -> list[dict[str, Any]]:
    return [e for e in bundle.get("entry", []) if e["search"]["mode"] == "match"]


async def test_following_next_links_visits_every_match_once(client: httpx.AsyncClient) -> None:
    ids = await _load(client)
    seen: list[str] = []
    url: str | None = "/fhir/Patient?family=rivera&_count=3"
    while url:
        bundle = (await client.get(url)).json()
        assert bundle["type"] == "searchset"
        seen += [e["resource"]["id"] for e in _matches(bundle)]
        url = next((link["url"] for link in bundle["link"] if link["relation"] == "next"), None)
    assert sorted(seen) == sorted(ids)


async def test_post_search_with_a_form_body_equals_get(client: httpx.AsyncClient) -> None:
    await _load(client)
    got = (await client.get("/fhir/Patient?gender=female&_sort=birthdate")).json()
    posted = (await client.post("/fhir/Patient/_search", content="gender=female&_sort=birthdate",
                                headers={"Content-Type": "application/x-www-form-urlencoded"})).json()
    assert [e["resource"]["id"] for e in _matches(got)] == [e["resource"]["id"] for e in _matches(posted)]
    assert got["total"] == posted["total"] == 3


async def test_include_entries_are_marked_include(client: httpx.AsyncClient) -> None:
    await _load(client, 2)
    bundle = (await client.get("/fhir/Patient?_include=Patient:organization")).json()
    modes = {(e["resource"]["resourceType"], e["search"]["mode"]) for e in bundle["entry"]}
    assert modes == {("Patient", "match"), ("Organization", "include")}


async def test_system_search_by_type_spans_types(client: httpx.AsyncClient) -> None:
    await _load(client, 2)
    bundle = (await client.get("/fhir?_type=Patient,Organization&_count=50")).json()
    assert {e["resource"]["resourceType"] for e in _matches(bundle)} == {"Patient", "Organization"}


async def test_summary_count_and_elements(client: httpx.AsyncClient) -> None:
    await _load(client, 3)
    count = (await client.get("/fhir/Patient?_summary=count")).json()
    assert count["total"] == 3 and "entry" not in count
    subset = (await client.get("/fhir/Patient?_elements=gender")).json()
    resource = _matches(subset)[0]["resource"]
    assert "gender" in resource and "name" not in resource
    assert any(t["code"] == "SUBSETTED" for t in resource["meta"]["tag"])


async def test_lenient_search_drops_unknown_parameters_from_the_self_link(client: httpx.AsyncClient) -> None:
    await _load(client, 2)
    bundle = (await client.get("/fhir/Patient?gender=male&colour=blue")).json()
    self_link = next(link["url"] for link in bundle["link"] if link["relation"] == "self")
    assert "colour" not in self_link and "gender=male" in self_link
    assert bundle["total"] == 1


@pytest.mark.parametrize(("query", "code"), [
    ("colour=blue", "not-supported"),
    ("birthdate=notadate", "invalid"),
    ("gender:contains=ma", "not-supported"),
])
async def test_strict_search_refuses_what_it_cannot_honour(client: httpx.AsyncClient, query: str, code: str) -> None:
    response = await client.get(f"/fhir/Patient?{query}", headers={"Prefer": "handling=strict"})
    assert response.status_code == 400, response.text
    issue = response.json()["issue"][0]
    assert issue["code"] in (code, "invalid")


@pytest.mark.parametrize("query", ["name=' OR 1=1 --", "name=.*", "family:contains=%25_", "_id=a,b\\,c"])
async def test_values_that_look_like_sql_or_regex_are_matched_literally(client: httpx.AsyncClient,
                                                                          query: str) -> None:
    await _load(client, 2)
    response = await client.get(f"/fhir/Patient?{query}")
    assert response.status_code == 200
    assert _matches(response.json()) == []
