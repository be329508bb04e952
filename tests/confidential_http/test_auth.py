"""With ``FHIR_AUTH=smart``, real keys and real tokens: intake needs ``system/Consent.c`` and a Care Partner files
only what it received itself; the lookup needs a token and reads the Patient through the gate."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from fhir_server.app import create_app
from fhir_server.settings import Settings
from tests.confidential_http.support import REQUESTS, WITHDRAWALS, cin, consent_ref, example, parameters
from tests.conftest import STORE, make_store
from tests.security.conftest import Secure, bearer


async def _audited(client: httpx.AsyncClient, admin: dict[str, str], patient: str, interaction: str) -> bool:
    """An AuditEvent about ``patient`` for that interaction shows up (written behind the answer, within 1 s)."""
    for _ in range(40):
        found = (await client.get("/fhir/AuditEvent", params={"patient": patient}, headers=admin)).json()
        codes = {c.get("code") for e in found.get("entry", []) for c in e["resource"].get("subtype", [])}
        if interaction in codes:
            return True
        await asyncio.sleep(0.05)
    return False


@pytest.fixture
async def secure(tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[Secure]:
    settings = Settings(data_dir=tmp_path, load_conformance=True, auth="smart")
    app = create_app(settings, make_store(STORE, tmp_path, request))
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as c:
            yield Secure(c, app.state.security, app)


async def test_a_care_partner_token_files_its_own_requests_only(secure: Secure) -> None:
    client = secure.client
    assert (await client.post(REQUESTS, json=example("phone"))).status_code == 401
    admin = bearer(await secure.admin_token())
    filed = await client.post(REQUESTS, json=example("phone"), headers=admin)
    assert filed.status_code == 201, filed.text
    consent = (await client.get(f"/fhir/{consent_ref(filed)}", headers=admin)).json()
    plan = consent["organization"][0]["reference"]

    _, token = await secure.partner(organization=plan, purposes=("HPAYMT",))
    as_plan = bearer(token)
    refused = await client.post(REQUESTS, json=example("electronic"), headers=as_plan)
    assert refused.status_code == 403 and refused.json()["issue"][0]["code"] == "forbidden"
    assert (await client.post(REQUESTS, json=example("mail"), headers=as_plan)).status_code == 201
    withdrawal = {"requestId": "GPHP-CC-2026-1187", "receivedDate": "2026-12-04"}
    assert (await client.post(WITHDRAWALS, json=withdrawal, headers=as_plan)).status_code == 200
    answer = await client.post("/fhir/Patient/$communication-contact", headers=as_plan,
                               json=parameters(cin("97223344H"), ("about", "valueCoding", {"code": "SEX"})))
    assert answer.status_code == 200, answer.text
    assert answer.json()["parameter"][0]["valueAddress"]["city"] == "Arcata"
    mail = (await client.get("/fhir/Consent", params={"identifier": "GPHP-CC-2026-1203"}, headers=admin)).json()
    grace = mail["entry"][0]["resource"]["patient"]["reference"]
    assert await _audited(client, admin, grace, "operation")  # the member's contact went to the plan

    _, reader = await secure.partner(organization=plan, scopes=("system/Patient.rs",), purposes=("HPAYMT",))
    no_scope = await client.post(REQUESTS, json=example("all-communications"), headers=bearer(reader))
    assert no_scope.status_code == 403
