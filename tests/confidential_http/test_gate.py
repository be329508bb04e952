"""The consent gate shows a request's Consent, Provenance and fulfil Tasks to the Care Partners it concerns and
hides the Consent from a Care Partner that is neither a network member nor named (ACCESS.md §B "consent
records"), on the store chosen by STORE."""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from fhir_server.app import create_app
from fhir_server.consent.gate import Gate
from fhir_server.security.caller import Caller
from fhir_server.settings import Settings
from fhir_server.store.base import Store
from tests.confidential_http.support import example, form, search
from tests.conftest import make_store


@pytest.fixture
async def app_store(settings: Settings, tmp_path: Path, request: pytest.FixtureRequest
                    ) -> AsyncIterator[tuple[httpx.AsyncClient, Store, Gate]]:
    store = make_store(os.environ.get("STORE", "sqlite"), tmp_path, request)
    app = create_app(settings, store)
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as c:
            yield c, store, app.state.server.gate


async def _org(client: httpx.AsyncClient, name: str) -> str:
    (org,) = await search(client, f"Organization?name={name}")
    return f"Organization/{org['id']}"


async def test_the_care_partners_a_request_concerns_see_it_and_their_tasks(
        app_store: tuple[httpx.AsyncClient, Store, Gate]) -> None:
    client, store, gate = app_store
    assert (await client.post("/ascmi/forms", json=form("ab133-all-share"))).status_code == 201
    response = await client.post("/ascmi/confidential-communications", json=example("electronic"))
    assert response.status_code == 201, response.text
    outsider = {"resourceType": "Organization", "name": "Unrelated Clinic", "active": True,
                "identifier": [{"system": "http://hl7.org/fhir/sid/us-npi", "value": "1000000004"}]}
    assert (await client.post("/fhir/Organization", json=outsider)).status_code == 201
    written = [e["response"]["location"].split("/")[:2] for e in response.json()["entry"]]
    versions = [v for t, i in written if t in ("Consent", "Provenance", "Task") if (v := await store.read(t, i))]
    for name in ("Golden Poppy", "Sierra Vista"):
        caller = Caller("client", organization=await _org(client, name), scopes={"*": "cruds"}, purpose="HPAYMT")
        seen = await gate.visible(caller, versions)
        assert [v.resource_type for v in seen] == [v.resource_type for v in versions], name
    stranger = Caller("client", organization=await _org(client, "Unrelated"), scopes={"*": "cruds"}, purpose="TREAT")
    consent = [v for v in versions if v.resource_type == "Consent"]
    assert await gate.visible(stranger, consent) == []


async def test_a_fulfil_task_is_a_consent_record_its_owner_and_requester_see_whatever_the_person_shares(
        app_store: tuple[httpx.AsyncClient, Store, Gate]) -> None:
    """ASCMI.md §6: the Care Partner that must act on a request sees its Task even when the person shares nothing
    with it (no form on file, any purpose): the Task is the request's record, not clinical data. A Care Partner
    it does not concern does not see it."""
    client, store, gate = app_store
    response = await client.post("/ascmi/confidential-communications", json=example("electronic"))
    assert response.status_code == 201, response.text
    outsider = {"resourceType": "Organization", "name": "Unrelated Clinic", "active": True,
                "identifier": [{"system": "http://hl7.org/fhir/sid/us-npi", "value": "1000000004"}]}
    assert (await client.post("/fhir/Organization", json=outsider)).status_code == 201
    written = [e["response"]["location"].split("/")[:2] for e in response.json()["entry"]]
    tasks = [v for t, i in written if t == "Task" if (v := await store.read(t, i))]
    assert tasks
    for task in tasks:
        body = json.loads(task.body or b"{}")
        for who in {body["owner"]["reference"], body["requester"]["reference"]}:
            for purpose in ("TREAT", "HPAYMT", "HOPERAT", "COC", "CAREMGT", "social-services"):
                caller = Caller("client", organization=who, scopes={"*": "cruds"}, purpose=purpose)
                assert await gate.visible(caller, [task]) == [task], (who, purpose)
    stranger = Caller("client", organization=await _org(client, "Unrelated"), scopes={"*": "cruds"}, purpose="TREAT")
    assert await gate.visible(stranger, tasks) == []
