"""ValueSet/$expand, ValueSet/$validate-code and CodeSystem/$lookup over what the server holds (the ASCMI
code systems loaded at start-up), and refusal of unusable StructureDefinitions."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from fhir_server.settings import Settings

BASE = "https://ascmi.example.org/fhir"
CATEGORY_VS = f"{BASE}/ValueSet/ascmi-category"
CATEGORY_CS = f"{BASE}/CodeSystem/ascmi-category"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path, auth="off", load_conformance=True)


async def test_expand_lists_every_held_code_with_its_display(client: httpx.AsyncClient) -> None:
    response = await client.get(f"/fhir/ValueSet/$expand?url={CATEGORY_VS}")
    assert response.status_code == 200, response.text
    contains = response.json()["expansion"]["contains"]
    codes = {c["code"] for c in contains}
    assert {"mental-health", "hiv", "substance-use-part2"} <= codes
    assert all(c["system"] == CATEGORY_CS and c.get("display") for c in contains)


async def test_expand_of_an_instance_and_by_parameters_agree(client: httpx.AsyncClient) -> None:
    by_id = await client.get("/fhir/ValueSet/ascmi-category/$expand")
    by_post = await client.post("/fhir/ValueSet/$expand", json={
        "resourceType": "Parameters", "parameter": [{"name": "url", "valueUri": CATEGORY_VS}]})
    assert by_id.status_code == by_post.status_code == 200
    assert by_id.json()["expansion"]["total"] == by_post.json()["expansion"]["total"] > 0


@pytest.mark.parametrize(("code", "expected"), [("hiv", True), ("not-a-category", False)])
async def test_validate_code_answers_membership(client: httpx.AsyncClient, code: str, expected: bool) -> None:
    response = await client.get(f"/fhir/ValueSet/$validate-code?url={CATEGORY_VS}&system={CATEGORY_CS}&code={code}")
    assert response.status_code == 200
    result = {p["name"]: p for p in response.json()["parameter"]}
    assert result["result"]["valueBoolean"] is expected
    assert ("display" in result) is expected and ("message" in result) is not expected


async def test_lookup_returns_the_display_of_a_held_code(client: httpx.AsyncClient) -> None:
    response = await client.get(f"/fhir/CodeSystem/$lookup?system={CATEGORY_CS}&code=mental-health")
    assert response.status_code == 200
    names = {p["name"]: p for p in response.json()["parameter"]}
    assert names["display"]["valueString"]


@pytest.mark.parametrize(("url", "status", "code"), [
    (f"/fhir/CodeSystem/$lookup?system={CATEGORY_CS}&code=nope", 404, "not-found"),
    ("/fhir/CodeSystem/$lookup?system=http://unknown.org/cs&code=x", 404, "not-found"),
    ("/fhir/CodeSystem/$lookup?code=x", 400, "required"),
    ("/fhir/ValueSet/$expand?url=http://unknown.org/vs", 404, "not-found"),
    ("/fhir/ValueSet/$expand", 400, "required"),
    (f"/fhir/ValueSet/$validate-code?url={CATEGORY_VS}", 400, "required"),
])
async def test_bad_terminology_requests_are_operation_outcomes(client: httpx.AsyncClient, url: str, status: int,
                                                              code: str) -> None:
    response = await client.get(url)
    assert response.status_code == status, response.text
    assert response.json()["issue"][0]["code"] == code


async def test_a_structure_definition_with_an_unknown_base_is_refused_422(client: httpx.AsyncClient) -> None:
    sd = {"resourceType": "StructureDefinition", "url": "http://example.org/StructureDefinition/broken",
          "name": "Broken", "status": "draft", "kind": "resource", "abstract": False, "type": "Patient",
          "baseDefinition": "http://example.org/StructureDefinition/does-not-exist", "derivation": "constraint",
          "differential": {"element": [{"id": "Patient.name", "path": "Patient.name", "min": 1}]}}
    response = await client.post("/fhir/StructureDefinition", json=sd)
    assert response.status_code == 422, response.text
    assert (await client.get("/fhir/StructureDefinition?url=http://example.org/StructureDefinition/broken")
            ).json().get("total") == 0
