"""Read, vread and search through the gate: withheld is indistinguishable from absent."""

from __future__ import annotations

import httpx
import pytest

from tests.enforcement.world import build, leaks, revoke


def ids(bundle: dict) -> list[str]:  # type: ignore[type-arg]
    return [f"{e['resource']['resourceType']}/{e['resource']['id']}" for e in bundle.get("entry", [])
            if e.get("search", {}).get("mode") != "outcome"]


async def test_member_reads_general_health_but_not_the_do_not_share_category(client: httpx.AsyncClient) -> None:
    w = await build(client, "mental-health")
    h = w.headers("MEMBER")
    assert (await client.get(f"/fhir/{w.ids['general_obs']}", headers=h)).status_code == 200
    secret = await client.get(f"/fhir/{w.ids['secret_obs']}", headers=h)
    missing = await client.get("/fhir/Observation/does-not-exist", headers=h)
    assert secret.status_code == missing.status_code == 404
    assert secret.json()["issue"][0]["code"] == missing.json()["issue"][0]["code"]
    assert secret.json()["issue"][0]["diagnostics"].replace(w.ids["secret_obs"], "X") == \
        missing.json()["issue"][0]["diagnostics"].replace("Observation/does-not-exist", "X")
    v = await client.get(f"/fhir/{w.ids['secret_obs']}/_history/1", headers=h)
    assert v.status_code == 404
    admin = await client.get(f"/fhir/{w.ids['secret_obs']}")
    assert admin.status_code == 200


async def test_search_pages_stay_full_and_totals_count_only_visible(client: httpx.AsyncClient) -> None:
    w = await build(client, "hiv")
    h = w.headers("MEMBER")
    r = await client.get(f"/fhir/Observation?subject={w.patient}&_total=accurate", headers=h)
    assert r.status_code == 200
    bundle = r.json()
    assert sorted(ids(bundle)) == sorted([w.ids["general_obs"], w.ids["general_obs2"]])
    assert bundle["total"] == 2
    assert not leaks(r, w.withheld("MEMBER"))
    seen: list[str] = []
    url: str | None = f"/fhir/Observation?subject={w.patient}&_count=1"
    while url:
        page = await client.get(url, headers=h)
        assert not leaks(page, w.withheld("MEMBER")), page.text
        b = page.json()
        assert len(ids(b)) == 1
        seen += ids(b)
        url = next((lnk["url"] for lnk in b["link"] if lnk["relation"] == "next"), None)
        url = url.replace("http://test", "") if url else None
    assert sorted(seen) == sorted([w.ids["general_obs"], w.ids["general_obs2"]])
    count = await client.get(f"/fhir/Observation?subject={w.patient}&_summary=count", headers=h)
    assert count.json()["total"] == 2


@pytest.mark.parametrize("key", ["MEMBER", "OUTSIDER", "EXCLUDED"])
async def test_callers_see_what_the_form_and_the_floor_allow(client: httpx.AsyncClient, key: str) -> None:
    w = await build(client, "substance-use")
    h = w.headers(key)
    r = await client.get(f"/fhir/Observation?subject={w.patient}", headers=h)
    assert sorted(ids(r.json())) == sorted(i for i in w.shown(key) if i.startswith("Observation"))
    assert not leaks(r, w.withheld(key))
    consent = await client.get(f"/fhir/{w.consent}", headers=h)
    assert consent.status_code == (404 if key == "OUTSIDER" else 200)


async def test_revocation_takes_effect_on_the_next_request(client: httpx.AsyncClient) -> None:
    w = await build(client, "sti")
    h = w.headers("MEMBER")
    assert (await client.get(f"/fhir/{w.ids['general_obs']}", headers=h)).status_code == 200
    await revoke(w)
    assert (await client.get(f"/fhir/{w.ids['general_obs']}", headers=h)).status_code == 404
    r = await client.get(f"/fhir/Observation?subject={w.patient}", headers=h)
    assert ids(r.json()) == []
    assert not leaks(r, w.withheld("REVOKED"))
