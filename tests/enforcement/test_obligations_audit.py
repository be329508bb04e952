"""PSYTHPN, obligations on the disclosed copy, the Bundle's confidentiality high-water mark, disclosure audit rows,
the accounting report, and the decision cache across workers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from fhir_server.app import create_app
from fhir_server.consent.disclosure import is_disclosure
from fhir_server.consent.report import report
from tests.conftest import STORE, make_store
from tests.enforcement.world import CONFIDENTIALITY, World, build, labels_of, observation, revoke

ACT = "http://terminology.hl7.org/CodeSystem/v3-ActCode"


def codes(resource: dict[str, Any]) -> set[str]:
    return {c["code"] for c in resource.get("meta", {}).get("security", [])}


async def _labelled(w: World, *labels: dict[str, str]) -> str:
    return await w.post(observation(w.patient, "4444-4", list(labels)))


async def test_psychotherapy_notes_are_never_disclosed(client: httpx.AsyncClient) -> None:
    w = await build(client, "education")  # everything else shared
    notes = await _labelled(w, {"system": ACT, "code": "PSYTHPN"})
    both = await _labelled(w, {"system": ACT, "code": "PSYTHPN"}, *labels_of("mental-health"))
    h = w.headers("MEMBER")
    for ref in (notes, both):
        assert (await client.get(f"/fhir/{ref}", headers=h)).status_code == 404
        assert (await client.get(f"/fhir/{ref}")).status_code == 200  # the administrator sees it
    r = await client.get(f"/fhir/Observation?subject={w.patient}&code=4444-4&_total=accurate", headers=h)
    assert r.json()["total"] == 0 and "entry" not in r.json()


@pytest.mark.parametrize(("category", "expected"), [
    ("mental-health", {"NORDSCLCD"}),
    ("hiv", {"NORDSCLCD"}),
    ("substance-use-part2", {"NORDSCLCD", "42CFRPart2"}),
    ("general-health", set()),
])
async def test_disclosed_copy_carries_its_obligations_and_stored_bytes_do_not_change(
        client: httpx.AsyncClient, category: str, expected: set[str]) -> None:
    w = await build(client, "education")
    ref = await _labelled(w, *labels_of(category))
    stored = (await client.get(f"/fhir/{ref}")).json()
    h = w.headers("MEMBER")
    r = await client.get(f"/fhir/{ref}", headers=h)
    assert r.status_code == 200
    assert codes(r.json()) - codes(stored) == expected - codes(stored)
    assert expected <= codes(r.json())
    search = (await client.get(f"/fhir/Observation?_id={ref.split('/')[1]}", headers=h)).json()
    assert codes(search["entry"][0]["resource"]) == codes(r.json())
    again = (await client.get(f"/fhir/{ref}")).json()
    assert again == stored  # the administrator still reads the stored resource, unchanged


async def test_bundles_carry_one_confidentiality_code_the_highest_of_their_entries(
        client: httpx.AsyncClient) -> None:
    w = await build(client, "education")
    await _labelled(w, *labels_of("mental-health"), {"system": CONFIDENTIALITY, "code": "R"})
    h = w.headers("MEMBER")
    for url, code in ((f"/fhir/Observation?subject={w.patient}", "R"),
                      (f"/fhir/Observation?subject={w.patient}&code=1111-1", "N"),
                      ("/fhir/Observation?code=no-such-code", "N"),
                      ("/fhir/Observation/_history", "R")):
        security = (await client.get(url, headers=h)).json()["meta"]["security"]
        assert [(s["system"], s["code"]) for s in security] == [(CONFIDENTIALITY, code)], url
    assert "security" not in (await client.get(f"/fhir/Observation?subject={w.patient}")).json()["meta"]


async def test_each_disclosure_is_audited_and_partners_read_only_their_own(client: httpx.AsyncClient) -> None:
    w = await build(client, "education")
    member, outsider = w.headers("MEMBER"), w.headers("OUTSIDER")
    assert (await client.get(f"/fhir/{w.ids['general_obs']}", headers=member)).status_code == 200
    assert (await client.get(f"/fhir/Observation?subject={w.patient}", headers=outsider)).status_code == 200
    assert (await client.get("/fhir/Practitioner", headers=member)).status_code == 200  # no patient data
    await client.app.state.server.audit.flush()  # type: ignore[attr-defined]
    r = await client.get(f"/fhir/AuditEvent?patient={w.patient}&_count=100")
    every = [e["resource"] for e in r.json()["entry"] if is_disclosure(e["resource"])]

    def client_of(event: dict[str, Any]) -> str:
        return next(a["who"]["identifier"]["value"] for a in event["agent"] if a.get("requestor"))

    events = [e for e in every if client_of(e) in (w.clients["MEMBER"], w.clients["OUTSIDER"])]
    assert sorted(client_of(e) for e in events) == sorted([w.clients["MEMBER"], w.clients["OUTSIDER"]])
    assert len(every) > len(events)  # the administrator's own searches while filing are audited too
    read = next(e for e in events if e["subtype"][0]["code"] == "read")
    assert read["action"] == "R" and read["outcome"] == "0"
    assert {a["who"].get("reference") for a in read["agent"]} >= {w.orgs["PLAN"]}
    assert read["agent"][0]["purposeOfUse"][0]["coding"][0]["code"] == "TREAT"
    patient = next(x for x in read["entity"] if x.get("what", {}).get("reference") == w.patient)
    assert {d["valueString"] for d in patient["detail"]} >= {"general-health"}
    mine = (await client.get(f"/fhir/AuditEvent?patient={w.patient}", headers=member)).json()
    assert [e["resource"]["id"] for e in mine.get("entry", [])] == [read["id"]]
    lines = await report(client.app.state.server.store, w.patient.split("/")[1],  # type: ignore[attr-defined]
                         "https://ascmi.example.org/fhir/sid/medi-cal-cin")
    assert lines is not None and len(lines) == 1 + len(every)
    text = "\n".join(lines)
    partner_lines = [line for line in lines if "Golden Poppy Health Plan" in line or "Lone Pine Clinic" in line]
    assert len(partner_lines) == 2
    assert all("general health" in line and "legal floor" in line for line in partner_lines)  # rule 3: TREAT
    assert "for TREAT" in text
    by_cin = await report(client.app.state.server.store, w.person["mediCalId"],  # type: ignore[attr-defined]
                          "https://ascmi.example.org/fhir/sid/medi-cal-cin")
    assert by_cin == lines


async def test_a_revocation_filed_on_another_worker_changes_the_next_answer(
        client: httpx.AsyncClient, settings: Any, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    """Two apps on one store stand for two workers: the first caches a permit, the second files the revocation,
    the first's very next answer is the new one (the cache is keyed by store versions)."""
    w = await build(client, "education")
    h = w.headers("MEMBER")
    gate = client.app.state.server.gate  # type: ignore[attr-defined]
    assert (await client.get(f"/fhir/{w.ids['general_obs']}", headers=h)).status_code == 200
    hits = gate.hits
    assert (await client.get(f"/fhir/{w.ids['general_obs']}", headers=h)).status_code == 200
    assert gate.hits > hits  # the second answer came from the cache
    if STORE == "mongo":
        other_store = make_store("mongo", tmp_path, request)
        other_store.database = client.app.state.server.store.database  # type: ignore[attr-defined]
    else:
        other_store = make_store("sqlite", tmp_path, request)
    other = create_app(settings, other_store)
    async with other.router.lifespan_context(other):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=other), base_url="http://test",
                                     headers={"Authorization": client.headers["Authorization"]}) as second:
            await revoke(World(second, w.category, person=w.person))
    assert (await client.get(f"/fhir/{w.ids['general_obs']}", headers=h)).status_code == 404
    assert (await client.get(f"/fhir/{w.consent}", headers=h)).status_code == 200
