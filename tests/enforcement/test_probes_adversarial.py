"""Adversarial probes of the consent gate (issue #13, ACCESS.md §B "withheld"): paths the leak probe of
:mod:`tests.enforcement.test_leak_probe` does not walk — a page link minted for one caller replayed by another,
conditional writes whose criteria match a visible and a withheld resource, ``If-Match``/``If-None-Match`` on a
withheld id, references to withheld resources in written resources, chains through a Patient hidden by the
consent-records rule, ``_list``, ``_sort``, system ``_summary=count``. Each answer must equal the answer for a
resource that does not exist.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.decision_http.world import cin
from tests.enforcement.test_leak_probe import entry_ids
from tests.enforcement.world import SENSITIVE, World, build, leaks, observation, revoke

CATEGORY = SENSITIVE[0]
PATCH = b'[{"op":"replace","path":"/status","value":"amended"}]'
JSON_PATCH = {"content-type": "application/json-patch+json"}


def _next(bundle: dict[str, Any]) -> str | None:
    url = next((lk["url"] for lk in bundle.get("link", []) if lk["relation"] == "next"), None)
    return url.replace("http://test", "") if url else None


@pytest.fixture
async def world(client: httpx.AsyncClient) -> World:
    return await build(client, CATEGORY)


async def test_a_page_link_replayed_by_another_caller_is_gated_for_that_caller(world: World) -> None:
    """A next link minted for MEMBER (who sees general data) and replayed by EXCLUDED shows EXCLUDED nothing."""
    c = world.client
    url: str | None = f"/fhir/Observation?subject={world.patient}&_count=1"
    links = []
    while url:
        b = (await c.get(url, headers=world.headers("MEMBER"))).json()
        url = _next(b)
        if url:
            links.append(url)
    assert links
    withheld = world.withheld("EXCLUDED")
    for link in links:
        r = await c.get(link, headers=world.headers("EXCLUDED"))
        assert r.status_code in (200, 404, 410), r.text
        assert not leaks(r, withheld), r.text
        if r.status_code == 200:
            assert [i for i in entry_ids(r.json()) if i in withheld] == []


async def test_conditional_writes_whose_criteria_also_match_a_withheld_resource(world: World) -> None:
    """``_id=<visible>,<withheld>`` matches exactly one resource for the caller: no 412 "multiple matches"."""
    c, h = world.client, world.headers("MEMBER")
    shown, secret = world.ids["general_obs"], world.ids["secret_obs"]
    query = f"_id={shown.split('/')[1]},{secret.split('/')[1]}"
    body = observation(world.patient, "1111-1")
    r = await c.put(f"/fhir/Observation?{query}", json=body, headers=h)
    assert r.status_code == 200 and r.json()["id"] == shown.split("/")[1], r.text
    r = await c.patch(f"/fhir/Observation?{query}", content=PATCH, headers={**h, **JSON_PATCH})
    assert r.status_code == 200 and r.json()["id"] == shown.split("/")[1], r.text
    r = await c.post("/fhir/Observation", json=body, headers={**h, "if-none-exist": query})
    assert r.status_code == 200 and r.json()["id"] == shown.split("/")[1], r.text
    r = await c.delete(f"/fhir/Observation?{query}", headers=h)
    assert r.status_code in (200, 204), r.text
    stored = await c.get(f"/fhir/{secret}")  # administrator
    assert stored.status_code == 200 and stored.json()["meta"]["versionId"] == "1"


async def test_if_match_and_if_none_match_on_a_withheld_id_answer_like_a_missing_one(world: World) -> None:
    c, h = world.client, world.headers("MEMBER")
    secret = world.ids["secret_obs"]
    missing = "Observation/no-such-id-0000"
    answers = []
    for ref in (secret, missing):
        body = {**observation(world.patient, "1111-1"), "id": ref.split("/")[1]}
        put = await c.put(f"/fhir/{ref}", json=body, headers={**h, "if-match": 'W/"1"'})
        get = await c.get(f"/fhir/{ref}", headers={**h, "if-none-match": 'W/"1"'})
        delete = await c.delete(f"/fhir/{ref}", headers={**h, "if-match": 'W/"1"'})
        answers.append((put.status_code, get.status_code, delete.status_code))
        assert not leaks(put, [secret] if ref != secret else []), put.text
    assert answers[0] == answers[1], answers
    stored = await c.get(f"/fhir/{secret}")
    assert stored.status_code == 200 and stored.json()["meta"]["versionId"] == "1"


async def test_put_to_a_withheld_id_answers_like_a_put_to_an_unknown_id(world: World) -> None:
    """Update-as-create would answer 201 for an unknown id and 404 for a withheld one: existence revealed. A
    Care Partner's PUT to an id the server does not show it answers the 404 either way (ACCESS.md §B)."""
    c, h = world.client, world.headers("REVOKED")
    await revoke(world)
    secret = world.ids["general_obs"]  # withheld from REVOKED after the revocation
    statuses = []
    for ref in (secret, "Observation/no-such-id-0001"):
        body = {**observation(world.patient, "1111-1"), "id": ref.split("/")[1]}
        r = await c.put(f"/fhir/{ref}", json=body, headers=h)
        statuses.append(r.status_code)
    assert statuses[0] == statuses[1] == 404, statuses
    assert (await c.get("/fhir/Observation/no-such-id-0001")).status_code == 404


async def test_a_reference_to_a_withheld_resource_in_a_written_resource_answers_like_a_missing_one(
        world: World) -> None:
    """Referential integrity must not tell a Care Partner that a withheld id exists (400 vs 201)."""
    c, h = world.client, world.headers("MEMBER")
    secret = world.ids["secret_obs"]
    answers = []
    for ref in (secret, "Observation/no-such-id-0002"):
        body = {**observation(world.patient, "1111-1"), "hasMember": [{"reference": ref}]}
        r = await c.post("/fhir/Observation", json=body, headers=h)
        answers.append((r.status_code, r.text.replace(ref.split("/")[1], "X")[:200] if r.status_code >= 400
                        else ""))
    assert answers[0] == answers[1], answers


async def test_chains_and_conditional_references_through_a_patient_hidden_by_the_records_rule(world: World
                                                                                              ) -> None:
    """OUTSIDER sees general data (legal floor) but not the Patient resource: a chain on the Patient's values
    (identifier, birthdate) matches nothing, and a transaction's ``Patient?identifier=`` reference does not
    resolve to it."""
    c, h = world.client, world.headers("OUTSIDER")
    system_value = cin("A")
    for url in (f"/fhir/Observation?subject:Patient.identifier={system_value}",
                f"/fhir/Observation?patient.identifier={system_value}&_total=accurate",
                f"/fhir/Observation?subject={world.patient}&patient.identifier={system_value}"):
        r = await c.get(url, headers=h)
        assert r.status_code == 200 and entry_ids(r.json()) == [], (url, r.text[:300])
    answers = []
    for ident in (system_value, "urn:x|no-such-person"):
        tx = {"resourceType": "Bundle", "type": "transaction", "entry": [{
            "request": {"method": "POST", "url": "Observation"},
            "resource": {**observation(f"Patient?identifier={ident}", "1111-1")}}]}
        r = await c.post("/fhir", json=tx, headers=h)
        answers.append(r.status_code)
        assert not leaks(r, [world.patient]), r.text
    assert answers[0] == answers[1], answers


async def test_list_sort_and_system_count_leave_withheld_out(world: World) -> None:
    c = world.client
    r = await c.post("/fhir/List", json={"resourceType": "List", "status": "current", "mode": "working",
                                          "entry": [{"item": {"reference": world.ids["secret_obs"]}},
                                                    {"item": {"reference": world.ids["general_obs"]}}]})
    assert r.status_code == 201, r.text
    the_list = r.json()["id"]
    h = world.headers("MEMBER")
    withheld = world.withheld("MEMBER")
    for url in (f"/fhir/Observation?_list={the_list}&_total=accurate",
                f"/fhir/Observation?subject={world.patient}&_sort=-code&_total=accurate",
                "/fhir?_type=Observation,Condition&_summary=count",
                f"/fhir/Observation?subject={world.patient}&_elements=id&_total=accurate",
                "/fhir/Observation/_history?_total=accurate"):
        r = await c.get(url, headers=h)
        assert r.status_code in (200, 400), (url, r.text[:300])
        assert not leaks(r, withheld), (url, r.text[:300])
        if "_type" in url and r.status_code == 200:
            assert r.json().get("total") == len([i for i in world.shown("MEMBER") if not i.startswith("Diag")])


async def test_operations_on_a_withheld_or_hidden_resource_answer_like_a_missing_one(world: World) -> None:
    """``$communication-contact`` for a person whose Patient the caller may not see, ``$validate`` of a stored
    withheld id in update mode, AuditEvents and history of others: what a missing one answers, nothing named."""
    c = world.client
    h = world.headers("OUTSIDER")  # general data by the legal floor, but not the Patient (consent record)
    answers = []
    patient = (await c.get(f"/fhir/{world.patient}")).json()  # administrator
    known = next(i for i in patient["identifier"] if i.get("value") == cin("A"))
    for value in (f"{known['system']}|{cin('A')}", f"{known['system']}|99999999Z"):
        system, _, code = value.partition("|")
        body = {"resourceType": "Parameters", "parameter": [
            {"name": "patient", "valueIdentifier": {"system": system, "value": code}},
            {"name": "kind", "valueCode": "bill"}]}
        r = await c.post("/fhir/Patient/$communication-contact", json=body, headers=h)
        answers.append((r.status_code, r.text.replace(code, "X")))
        assert not leaks(r, [world.patient]), r.text
    assert answers[0] == answers[1], answers
    h = world.headers("MEMBER")
    secret = world.ids["secret_obs"]
    answers = []
    for ref in (secret, "Observation/no-such-id-0003"):
        body = {**observation(world.patient, "1111-1"), "id": ref.split("/")[1]}
        r = await c.post(f"/fhir/{ref}/$validate?mode=update", json=body, headers=h)
        answers.append((r.status_code, r.text.replace(ref.split("/")[1], "X")))
    assert answers[0] == answers[1], answers
    withheld = world.withheld("MEMBER")
    for url in ("/fhir/AuditEvent?_count=1000", "/fhir/AuditEvent/_history?_count=1000",
                f"/fhir/AuditEvent?patient={world.patient}", "/fhir/_history?_since=2000-01-01&_count=1000"):
        r = await c.get(url, headers=world.headers("EXCLUDED"))
        assert r.status_code == 200 and not leaks(r, world.withheld("EXCLUDED")), (url, r.text[:300])
        for e in r.json().get("entry", []):
            res = e.get("resource", {})
            if res.get("resourceType") == "AuditEvent":  # only EXCLUDED's own requests
                assert world.clients["EXCLUDED"] in str(res.get("agent")), res
    assert withheld


async def test_consent_records_hidden_from_outsider_do_not_show_through_includes_or_joins(world: World) -> None:
    """OUTSIDER sees general data by the legal floor but no consent record of the person (Patient, Consent,
    Provenance): includes leave them out, and joins through them (chain, ``_has``, nested) match nothing."""
    c, h = world.client, world.headers("OUTSIDER")
    hidden = [world.patient, world.consent]
    pid = world.patient.split("/")[1]
    r = await c.get(f"/fhir/Observation?subject={world.patient}&_include=Observation:subject"
                    "&_revinclude=Provenance:target", headers=h)
    assert r.status_code == 200, r.text[:400]
    assert [i for i in entry_ids(r.json()) if i.split("/")[0] in ("Patient", "Consent", "Provenance")] == []
    assert not leaks(r, hidden[1:]), r.text[:400]  # the Patient's id is in the request and in each subject
    for url in (f"/fhir/Consent?patient={world.patient}&_total=accurate",
                f"/fhir/Provenance?target={world.consent}&_total=accurate",
                "/fhir/Observation?subject:Patient._has:Consent:patient:status=active&_total=accurate",
                f"/fhir/Observation?patient._has:Consent:patient:status=active&subject={world.patient}",
                f"/fhir/Observation?subject:Patient._id={pid}&_total=accurate",
                "/fhir/Observation?subject:Patient.name=Adams&_total=accurate"):
        r = await c.get(url, headers=h)
        assert r.status_code == 200, (url, r.text[:300])
        assert entry_ids(r.json()) == [] and r.json().get("total", 0) == 0, (url, r.text[:300])
        if world.consent not in url:  # a self link echoes the request
            assert not leaks(r, [world.consent]), (url, r.text[:300])
