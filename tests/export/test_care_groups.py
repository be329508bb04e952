"""Care Partner Groups kept by intake: ``Group/cp-<org>`` = persons whose form in force names the Organization
(collector or included recipient, not excluded); ``Group/ascmi-all-care-partners`` = persons whose form shares
with every Care Partner. ``Group/[id]/$export`` of one's own Group is "everyone who authorised us"."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from fhir_server.app import create_app
from fhir_server.ascmi.care_groups import ALL_PARTNERS_GROUP, group_id
from fhir_server.settings import Settings
from tests.conftest import STORE, make_store
from tests.decision_http.world import PARTNERS, PEOPLE, cin, form, revocation
from tests.enforcement.conftest import TestCallers, as_partner
from tests.enforcement.world import build
from tests.export.support import exported, manifest


@pytest.fixture
async def client(tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(data_dir=tmp_path, auth="off", load_conformance=True, export_poll_seconds=0.05)
    app = create_app(settings, make_store(STORE, tmp_path, request))
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=TestCallers(app)),
                                     base_url="http://test") as c:
            yield c


async def _org(client: httpx.AsyncClient, key: str) -> str:
    ident = PARTNERS[key]["identifiers"][0]
    found = (await client.get("/fhir/Organization", params={"identifier": f"{ident['system']}|{ident['value']}"}
                              )).json()
    return str(found["entry"][0]["resource"]["id"])


async def _patient(client: httpx.AsyncClient, key: str) -> str:
    found = (await client.get("/fhir/Patient", params={"identifier": cin(key)})).json()
    return str(found["entry"][0]["resource"]["id"])


async def _members(client: httpx.AsyncClient, gid: str) -> set[str]:
    r = await client.get(f"/fhir/Group/{gid}")
    if r.status_code == 404:
        return set()
    assert r.status_code == 200, r.text
    group = r.json()
    assert group["actual"] is True and group["type"] == "person"
    return {m["entity"]["reference"].split("/")[1] for m in group.get("member", [])}


async def _file(client: httpx.AsyncClient, body: dict[str, object], path: str = "/ascmi/forms") -> None:
    r = await client.post(path, json=body)
    assert r.status_code in (200, 201), r.text


async def test_groups_follow_forms_and_revocations(client: httpx.AsyncClient) -> None:
    named = form("G-1", PEOPLE["A"], "2025-06-01", ["general-health"], all_care_partners=False,
                 include=("NAMED",), exclude=("PART2",))
    await _file(client, named)
    everyone = form("G-2", PEOPLE["B"], "2025-06-01", ["general-health"])
    await _file(client, everyone)
    a, b = await _patient(client, "A"), await _patient(client, "B")
    clinic, named_org, part2 = (await _org(client, "CLINIC"), await _org(client, "NAMED"),
                                await _org(client, "PART2"))
    assert await _members(client, group_id(clinic)) == {a, b}  # the collector of both forms
    assert await _members(client, group_id(named_org)) == {a}  # included on A's form
    assert await _members(client, group_id(part2)) == set()  # excluded
    assert await _members(client, ALL_PARTNERS_GROUP) == {b}
    managed = (await client.get(f"/fhir/Group/{group_id(named_org)}")).json()["managingEntity"]
    assert managed == {"reference": f"Organization/{named_org}"}
    await _file(client, revocation("G-1", PEOPLE["A"], "2025-07-01", "2025-07-01"), "/ascmi/revocations")
    assert await _members(client, group_id(named_org)) == set()
    assert await _members(client, group_id(clinic)) == {b}


async def test_group_export_of_a_care_partner_is_everyone_who_authorised_it(client: httpx.AsyncClient) -> None:
    await _file(client, form("G-3", PEOPLE["A"], "2025-06-01", ["general-health"], all_care_partners=False,
                             include=("NAMED",)))
    await _file(client, form("G-4", PEOPLE["D"], "2025-06-01", ["general-health"], all_care_partners=False,
                             include=("PLAN",)))
    a, d = await _patient(client, "A"), await _patient(client, "D")
    named_org = await _org(client, "NAMED")
    for pid in (a, d):
        r = await client.post("/fhir/Observation", json={
            "resourceType": "Observation", "status": "final", "subject": {"reference": f"Patient/{pid}"},
            "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]}})
        assert r.status_code == 201
    h = as_partner(f"Organization/{named_org}")
    m = await manifest(client, f"/fhir/Group/{group_id(named_org)}/$export", headers=h,
                       params={"_type": "Patient,Observation"})
    got = await exported(client, m, h)
    assert {p["id"] for p in got["Patient"]} == {a}
    assert {o["subject"]["reference"] for o in got.get("Observation", [])} <= {f"Patient/{a}"}


async def test_the_shared_group_exports_only_what_each_partner_may_see(client: httpx.AsyncClient) -> None:
    """A form shares with all Care Partners but excludes PART2: both may export the shared Group (the Group
    resource itself is withheld from PART2); PART2's files hold nothing of that person, PLAN's hold it all."""
    w = await build(client, "hiv")  # person A: allCarePartners, PART2 excluded, HIV do-not-share
    assert await _members(client, ALL_PARTNERS_GROUP) == {w.patient.split("/")[1]}
    assert (await client.get(f"/fhir/Group/{ALL_PARTNERS_GROUP}", headers=w.headers("EXCLUDED"))).status_code == 404
    path = f"/fhir/Group/{ALL_PARTNERS_GROUP}/$export"
    excluded = w.headers("EXCLUDED")
    got = _keyed(await exported(client, await manifest(client, path, headers=excluded), excluded))
    assert not set(got) & {*w.withheld("EXCLUDED"), *w.shown("MEMBER")}
    member = w.headers("MEMBER")
    got = _keyed(await exported(client, await manifest(client, path, headers=member), member))
    assert set(w.shown("MEMBER")) <= set(got) and not set(w.withheld("MEMBER")) & set(got)


def _keyed(files: dict[str, list[dict[str, object]]]) -> dict[str, object]:
    return {f"{t}/{r['id']}": r for t, rs in files.items() for r in rs}
