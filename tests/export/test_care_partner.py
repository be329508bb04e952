"""A Care Partner's export holds exactly what it could read one resource at a time at transactionTime.

The world (a form with one do-not-share category, clinical data, four kinds of callers) is the enforcement suite's;
its callers come through the same test stand-in for the authentication edge (``X-Test-Caller``).
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from fhir_server.app import create_app
from fhir_server.consent.compartment import patients_of
from fhir_server.settings import Settings
from tests.conftest import STORE, make_store
from tests.enforcement.conftest import TestCallers
from tests.enforcement.world import build, revoke
from tests.export.support import exported, manifest


@pytest.fixture
async def client(tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(data_dir=tmp_path, auth="off", load_conformance=True, export_poll_seconds=0.05)
    app = create_app(settings, make_store(STORE, tmp_path, request))
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=TestCallers(app)),
                                     base_url="http://test") as c:
            yield c


async def _one_by_one(client: httpx.AsyncClient, headers: dict[str, str], until: str) -> dict[str, Any]:
    """Every resource the store held at ``until`` (an administrator's export), read one by one as the caller."""
    everything = await exported(client, await manifest(client))
    seen: dict[str, Any] = {}
    for rtype, resources in everything.items():
        for resource in resources:
            if resource["meta"]["lastUpdated"] > until:
                continue  # written after the Care Partner's export began (its own audit events)
            r = await client.get(f"/fhir/{rtype}/{resource['id']}", headers=headers)
            assert r.status_code in (200, 404), r.text
            if r.status_code == 200:
                seen[f"{rtype}/{resource['id']}"] = r.json()
    return seen


def _keyed(files: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    return {f"{t}/{r['id']}": r for t, rs in files.items() for r in rs}


@pytest.mark.parametrize("key", ["MEMBER", "OUTSIDER", "EXCLUDED"])
async def test_care_partner_export_equals_its_one_by_one_reads(client: httpx.AsyncClient, key: str) -> None:
    w = await build(client, "mental-health")
    h = w.headers(key)
    m = await manifest(client, headers=h)
    got = _keyed(await exported(client, m, h))
    expected = await _one_by_one(client, h, m["transactionTime"])
    assert sorted(got) == sorted(expected)
    assert got == expected  # the disclosed copies, obligations included
    assert not set(w.withheld(key)) & set(got)
    assert set(w.shown(key)) <= set(got)


async def test_care_partner_patient_export_after_a_revocation(client: httpx.AsyncClient) -> None:
    """Patient level: the caller's one-by-one reads of resources in some Patient compartment; a revocation
    takes effect on the next export."""
    w = await build(client, "hiv")
    h = w.headers("MEMBER")
    before = _keyed(await exported(client, await manifest(client, "/fhir/Patient/$export", headers=h), h))
    assert set(w.shown("MEMBER")) <= set(before)
    await revoke(w)
    m = await manifest(client, "/fhir/Patient/$export", headers=h)
    after = _keyed(await exported(client, m, h))
    assert not set(w.withheld("REVOKED")) & set(after)
    expected = {k: v for k, v in (await _one_by_one(client, h, m["transactionTime"])).items() if patients_of(v)}
    assert after == expected


async def test_type_filter_chains_join_only_through_what_the_partner_sees(client: httpx.AsyncClient) -> None:
    """The visible report refers to a withheld Observation: a chain through it matches nothing for the partner,
    in a search and in an export's _typeFilter alike (the administrator's filter finds the report)."""
    w = await build(client, "mental-health")
    h = w.headers("MEMBER")
    chain = "DiagnosticReport?result:Observation.code=2222-2"
    params = {"_type": "DiagnosticReport", "_typeFilter": chain}
    admin = await exported(client, await manifest(client, params=params))
    assert [f"DiagnosticReport/{r['id']}" for r in admin["DiagnosticReport"]] == [w.ids["report"]]
    searched = (await client.get(f"/fhir/{chain}", headers=h)).json()
    assert not searched.get("entry")
    assert (await exported(client, await manifest(client, params=params, headers=h), h)) == {}
    visible = chain.replace("2222-2", "1111-1")
    got = await exported(client, await manifest(client, params={**params, "_typeFilter": visible}, headers=h), h)
    assert [f"DiagnosticReport/{r['id']}" for r in got["DiagnosticReport"]] == [w.ids["report"]]


async def test_a_care_partner_export_is_in_the_accounting_of_disclosures(client: httpx.AsyncClient) -> None:
    w = await build(client, "sti")
    h = w.headers("MEMBER")
    m = await manifest(client, params={"_type": "Observation"}, headers=h)
    for _ in range(100):
        events = (await client.get("/fhir/AuditEvent", params={"patient": w.patient, "_count": "100"})).json()
        mine = [e["resource"] for e in events.get("entry", [])
                if any(base64.b64decode(x.get("query", "")).decode() == m["request"]
                       for x in e["resource"].get("entity", []))]
        if mine:
            break
        await asyncio.sleep(0.05)
    (event,) = mine
    assert event["agent"][0]["who"]["identifier"]["value"] == h["x-test-caller"].split("|")[2]
    (person,) = [e for e in event["entity"] if e.get("what", {}).get("reference") == w.patient]
    assert person["description"] == f"{len([i for i in w.shown('MEMBER') if i.startswith('Observation')])}" \
        " resource(s) disclosed"
