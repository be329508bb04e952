"""ASCMI_CANONICAL_BASE moves every ASCMI URL end to end: stored profiles, what intake writes, what $decide reads."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from fhir_server.settings import Settings
from tests.ascmi_http.support import example

BASE = "https://consent.plan.example.net/fhir"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path, auth="off", load_conformance=True, canonical_base=BASE)


async def test_a_moved_canonical_base_is_used_everywhere(client: httpx.AsyncClient) -> None:
    sd = (await client.get(f"/fhir/StructureDefinition?url={BASE}/StructureDefinition/ASCMIConsent")).json()
    assert sd["total"] == 1
    created = await client.post("/ascmi/forms", json=example("ab133-all-share"))
    assert created.status_code == 201, created.text
    consent = (await client.get(created.headers["location"])).json()
    assert "ascmi.example.org" not in str(consent)
    assert consent["policyRule"]["coding"][0]["system"] == f"{BASE}/CodeSystem/ascmi-form"
    form = example("ab133-all-share")
    decision = await client.post("/fhir/Consent/$decide", json={"resourceType": "Parameters", "parameter": [
        {"name": "patient", "valueIdentifier": {"system": f"{BASE}/sid/medi-cal-cin",
                                                "value": form["individual"]["mediCalId"]}},
        {"name": "recipient", "valueIdentifier": form["collector"]["identifiers"][0]},
        {"name": "purpose", "valueCoding": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActReason",
                                            "code": "TREAT"}}]})
    assert decision.status_code == 200, decision.text
    out = {p["name"]: p for p in decision.json()["parameter"]}
    assert out["consentOnFile"]["valueBoolean"] is True
