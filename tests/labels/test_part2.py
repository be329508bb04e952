"""``42CFRPart2`` is never inferred from codes: it is kept when sent, and added when the resource's author
(per type), its ``meta.source`` or the writing caller's Organization is a ``part2-program`` Organization."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from fhir_server.app import create_app
from fhir_server.repository import labels
from fhir_server.repository import resources as repo
from fhir_server.security.caller import Caller
from fhir_server.settings import Settings
from tests.conftest import STORE, make_store
from tests.labels.conftest import Labelled
from tests.labels.support import (
    ACT,
    CANONICAL,
    ICD,
    LOINC,
    PATIENT,
    RX,
    cc,
    codes_of,
    labels_of,
    organization,
    post,
    put,
)

PART2 = "42CFRPart2"


def observation(**fields: Any) -> dict[str, Any]:
    return {"resourceType": "Observation", "status": "final", "subject": PATIENT, "code": cc(LOINC, "8480-6"),
            **fields}


async def programs(client: httpx.AsyncClient) -> None:
    await put(client, organization("p2", "part2-program"))
    await put(client, organization("clinic", "provider"))


async def test_a_part2_program_author_adds_42cfrpart2(client: httpx.AsyncClient) -> None:
    await programs(client)
    by_program = await post(client, observation(performer=[{"reference": "Organization/p2"}]))
    assert codes_of(by_program) == {PART2}
    med = await post(client, {"resourceType": "MedicationRequest", "status": "active", "intent": "order",
                              "subject": PATIENT, "medicationCodeableConcept": cc(RX, "1819"),
                              "requester": {"reference": "Organization/p2"}})
    assert codes_of(med) == {"SUD", "ETH", PART2}
    doc = await post(client, {"resourceType": "DocumentReference", "status": "current", "subject": PATIENT,
                              "type": cc(LOINC, "11488-4"), "author": [{"reference": "Organization/p2"}],
                              "content": [{"attachment": {"contentType": "text/plain", "data": "eA=="}}]})
    assert codes_of(doc) == {PART2}
    by_clinic = await post(client, observation(performer=[{"reference": "Organization/clinic"}]))
    assert codes_of(by_clinic) == set()


async def test_meta_source_naming_a_part2_program_adds_42cfrpart2(client: httpx.AsyncClient) -> None:
    await programs(client)
    created = await post(client, observation(meta={"source": "https://ehr.example.org/fhir/Organization/p2"}))
    assert codes_of(created) == {PART2}
    created = await post(client, observation(meta={"source": "Organization/clinic#batch-7"}))
    assert codes_of(created) == set()


async def test_sent_42cfrpart2_is_kept(client: httpx.AsyncClient) -> None:
    created = await post(client, observation(meta={"security": [{"system": ACT, "code": PART2}]}))
    assert codes_of(created) == {PART2}


async def test_42cfrpart2_is_never_inferred_from_codes(client: httpx.AsyncClient) -> None:
    """Even a deployment's ValueSet for the Part 2 category cannot make a code imply it."""
    await put(client, {"resourceType": "ValueSet", "id": "ascmi-sls-substance-use-part2",
                       "url": f"{CANONICAL}/ValueSet/ascmi-sls-substance-use-part2", "status": "active",
                       "compose": {"include": [{"system": ICD, "concept": [{"code": "Z71.41"}]}]}})
    created = await post(client, {"resourceType": "Condition", "subject": PATIENT, "code": cc(ICD, "Z71.41")})
    assert codes_of(created) == set()
    sud = await post(client, {"resourceType": "Condition", "subject": PATIENT, "code": cc(ICD, "F11.20")})
    assert codes_of(sud) == {"SUD", "ETH"}


async def test_the_writing_callers_part2_organization_adds_42cfrpart2(labelled: Labelled) -> None:
    await programs(labelled.client)
    program = Caller("program-client", organization="Organization/p2", scopes={"*": "cruds"})
    clinic = Caller("clinic-client", organization="Organization/clinic", scopes={"*": "cruds"})
    async with labelled.store.transaction() as tx:
        assert codes_of(await labels.apply(tx, observation(), program)) == {PART2}
        assert codes_of(await labels.apply(tx, observation(), clinic)) == set()
        # identity and directory data are not Part 2 records, whoever writes them
        assert codes_of(await labels.apply(tx, {"resourceType": "Patient", "id": "p1"}, program)) == set()
        # the write path takes the caller of the request it runs in
        token = labels.WRITER.set(lambda: program)
        try:
            written = await repo.create(tx, observation(), check_refs=False)
        finally:
            labels.WRITER.reset(token)
    assert written.resource is not None and codes_of(written.resource) == {PART2}
    stored = (await labelled.client.get(f"/fhir/Observation/{written.version.id}")).json()
    assert codes_of(stored) == {PART2}


async def test_an_organization_becoming_a_part2_program_in_the_same_transaction_counts(
        client: httpx.AsyncClient) -> None:
    await put(client, organization("late", "provider"))
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": observation(id="before", performer=[{"reference": "Organization/late"}]),
         "request": {"method": "PUT", "url": "Observation/before"}},
        {"resource": organization("late", "part2-program"), "request": {"method": "PUT", "url": "Organization/late"}},
        {"resource": observation(id="after", performer=[{"reference": "Organization/late"}]),
         "request": {"method": "PUT", "url": "Observation/after"}},
    ]}
    response = await client.post("/fhir", json=bundle, headers={"Prefer": "return=representation"})
    assert response.status_code == 200, response.text
    assert [codes_of(e["resource"]) for e in response.json()["entry"]] == [set(), set(), {PART2}]


async def test_a_request_whose_caller_acts_for_a_part2_program_writes_part2_records(
        settings: Settings, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    """Over HTTP: the authentication edge puts the caller on ``request.state`` (the ASGI scope's state, as
    ``api/authentication.py`` does); emulated here by the outermost ASGI layer, so the write path must find it."""
    program = Caller("program-client", organization="Organization/p2", scopes={"*": "cruds"})
    store = make_store(STORE, tmp_path, request)
    app = create_app(settings, store)

    async def as_program(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/fhir/Observation"):
            scope.setdefault("state", {})["caller"] = program
        await app(scope, receive, send)

    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=as_program)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            await programs(client)
            response = await client.post("/fhir/Observation", json=observation())
            assert response.status_code == 201, response.text
            assert codes_of(response.json()) == {PART2}
            as_admin = await post(client, {"resourceType": "Condition", "subject": PATIENT,
                                           "code": cc(ICD, "J06.9")})
            assert codes_of(as_admin) == set()


async def test_a_care_partner_update_keeps_the_labels_an_administrator_may_remove(labelled: Labelled) -> None:
    """ACCESS.md §B: on update, a Care Partner may add labels, never remove them."""
    clinic = Caller("clinic-client", organization="Organization/clinic", scopes={"*": "cruds"})
    sent = [{"system": ACT, "code": PART2}, {"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality",
                                           "code": "R"}]
    await put(labelled.client, {"resourceType": "Condition", "id": "k", "subject": PATIENT, "code": cc(ICD, "B20"),
                                "meta": {"security": sent}})
    plain = {"resourceType": "Condition", "id": "k", "subject": PATIENT, "code": cc(ICD, "J06.9")}
    async with labelled.store.transaction() as tx:
        token = labels.WRITER.set(lambda: clinic)
        try:
            by_partner = await repo.update(tx, "Condition", "k", plain, check_refs=False)
            added = await repo.update(tx, "Condition", "k", {**plain, "code": cc(ICD, "F20.9")}, check_refs=False)
        finally:
            labels.WRITER.reset(token)
    assert by_partner.resource is not None and all_codes(by_partner.resource) == {PART2, "R", "HIV"}
    assert added.resource is not None and all_codes(added.resource) == {PART2, "R", "HIV", "MH", "BH", "PSY"}
    assert len(labels_of(added.resource)) == 6  # no duplicates between kept and inferred labels
    by_admin = await put(labelled.client, plain)  # FHIR_AUTH=off: an administrator
    assert all_codes(by_admin) == set()


def all_codes(resource: dict[str, Any]) -> set[str]:
    return {code for _, code in labels_of(resource)}
