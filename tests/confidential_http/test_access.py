"""A Care Partner files only the requests it received itself (ASCMI.md §6 with ACCESS.md §B: an intake's
``receivedBy`` must be the caller's Organization), on the store chosen by STORE."""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from fhir_server.app import create_app
from fhir_server.ascmi.confidential.intake import ConfidentialIntake
from fhir_server.fhir.outcome import FHIRError
from fhir_server.repository import bootstrap
from fhir_server.security.caller import Caller
from fhir_server.settings import Settings
from fhir_server.store.base import Store
from tests.confidential_http.support import example
from tests.conftest import make_store


@pytest.fixture
async def store(tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[Store]:
    s = make_store(os.environ.get("STORE", "sqlite"), tmp_path, request)
    await s.open()
    await bootstrap.load(s, "https://ascmi.example.org/fhir", True)
    try:
        yield s
    finally:
        await s.close()


async def _organization_of(store: Store, settings: Settings, body: dict) -> str:
    result = await ConfidentialIntake(store, settings, "http://test/fhir").file_request(body, "minimal")
    assert result.consent.body is not None
    consent = json.loads(result.consent.body)
    return str(consent["organization"][0]["reference"])


async def test_a_care_partner_files_its_own_requests_and_no_one_elses(store: Store, settings: Settings) -> None:
    plan = await _organization_of(store, settings, example("phone"))  # an administrator: any receiver
    as_plan = ConfidentialIntake(store, settings, "http://test/fhir", caller_organization=plan)
    result = await as_plan.file_request(example("mail"), "minimal")
    assert result.created
    clinic_request = example("electronic")
    with pytest.raises(FHIRError) as refused:
        await as_plan.file_request(clinic_request, "minimal")
    assert refused.value.status == 403 and refused.value.code == "forbidden"
    assert refused.value.expression == ("$.receivedBy",)
    unknown_org = ConfidentialIntake(store, settings, "http://test/fhir", caller_organization="Organization/nope")
    with pytest.raises(FHIRError) as nobody:
        await unknown_org.file_request(example("all-communications"), "minimal")
    assert nobody.value.status == 403


async def test_a_withdrawal_received_by_another_care_partner_is_refused(store: Store, settings: Settings) -> None:
    plan = await _organization_of(store, settings, example("phone"))
    clinic = await _organization_of(store, settings, example("electronic"))
    as_clinic = ConfidentialIntake(store, settings, "http://test/fhir", caller_organization=clinic)
    with pytest.raises(FHIRError) as refused:
        await as_clinic.withdraw(example("withdrawal"))  # names the plan as receivedBy
    assert refused.value.status == 403
    as_plan = ConfidentialIntake(store, settings, "http://test/fhir", caller_organization=plan)
    withdrawal = example("withdrawal")
    del withdrawal["receivedBy"]  # the caller's own requestId
    version = await as_plan.withdraw(withdrawal)
    assert version.version_id == 2


async def test_over_http_the_caller_on_the_request_state_is_the_one_checked(
        settings: Settings, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    """The authentication edge puts the caller on ``request.state`` (the ASGI scope's state); emulated here by
    the outermost ASGI layer for the intake paths, once the plan's Organization exists."""
    acting: dict[str, Caller] = {}
    app = create_app(settings, make_store(os.environ.get("STORE", "sqlite"), tmp_path, request))

    async def as_partner(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/ascmi/") and "caller" in acting:
            scope.setdefault("state", {})["caller"] = acting["caller"]
        await app(scope, receive, send)

    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=as_partner), base_url="http://test") as c:
            filed = await c.post("/ascmi/confidential-communications", json=example("phone"))
            assert filed.status_code == 201, filed.text
            plan = json.loads((await c.get(f"/fhir/{filed.headers['location'].split('/fhir/')[1]}")).content)[
                "organization"][0]["reference"]
            acting["caller"] = Caller("plan-client", organization=plan, scopes={"*": "cruds"}, purpose="HPAYMT")
            refused = await c.post("/ascmi/confidential-communications", json=example("electronic"))
            assert refused.status_code == 403 and refused.json()["issue"][0]["code"] == "forbidden"
            own = await c.post("/ascmi/confidential-communications", json=example("mail"))
            assert own.status_code == 201, own.text
            mine = {"requestId": "GPHP-CC-2026-1187", "receivedDate": "2026-12-04"}
            assert (await c.post("/ascmi/confidential-communications/withdrawals", json=mine)).status_code == 200
