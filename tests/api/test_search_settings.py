"""The page-size settings (FHIR_DEFAULT_COUNT, FHIR_MAX_COUNT) govern searches."""

from __future__ import annotations

import httpx
import pytest

from fhir_server.settings import Settings


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.with_(default_count=2, max_count=3)


async def test_the_default_and_maximum_page_sizes_come_from_the_settings(client: httpx.AsyncClient) -> None:
    for i in range(5):
        await client.post("/fhir/Patient", json={"resourceType": "Patient", "name": [{"family": f"F{i}"}]})
    default = (await client.get("/fhir/Patient")).json()
    capped = (await client.get("/fhir/Patient?_count=50")).json()
    assert len(default["entry"]) == 2
    assert len([e for e in capped["entry"] if e["search"]["mode"] == "match"]) == 3
    outcome = next(e["resource"] for e in capped["entry"] if e["search"]["mode"] == "outcome")
    assert "capped to 3" in outcome["issue"][0]["diagnostics"]
