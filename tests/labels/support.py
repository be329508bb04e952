"""Codes, resources and assertions the label tests share."""

from __future__ import annotations

from typing import Any

import httpx

ACT = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
ICD = "http://hl7.org/fhir/sid/icd-10-cm"
SCT = "http://snomed.info/sct"
LOINC = "http://loinc.org"
RX = "http://www.nlm.nih.gov/research/umls/rxnorm"
CANONICAL = "https://ascmi.example.org/fhir"
CARE_PARTNER_TYPE = f"{CANONICAL}/CodeSystem/care-partner-type"
PATIENT = {"reference": "Patient/p1"}

LABELS = {
    "substance-use": {"SUD", "ETH"},
    "mental-health": {"MH", "BH", "PSY"},
    "hiv": {"HIV"},
    "sti": {"STD"},
    "reproductive-health": {"SEX"},
    "gender-affirming-care": {"GENDER"},
    "intimate-partner-violence": {"SDV"},
}


def cc(system: str, code: str) -> dict[str, Any]:
    return {"coding": [{"system": system, "code": code}]}


def labels_of(resource: dict[str, Any]) -> list[tuple[str | None, str]]:
    return [(s.get("system"), s["code"]) for s in (resource.get("meta") or {}).get("security", [])]


def codes_of(resource: dict[str, Any]) -> set[str]:
    return {code for system, code in labels_of(resource) if system == ACT}


def organization(id: str, kind: str) -> dict[str, Any]:
    return {"resourceType": "Organization", "id": id, "name": f"{kind} {id}",
            "type": [{"coding": [{"system": CARE_PARTNER_TYPE, "code": kind}]}]}


async def put(client: httpx.AsyncClient, resource: dict[str, Any]) -> dict[str, Any]:
    response = await client.put(f"/fhir/{resource['resourceType']}/{resource['id']}", json=resource)
    assert response.status_code in (200, 201), response.text
    return response.json()  # type: ignore[no-any-return]


async def post(client: httpx.AsyncClient, resource: dict[str, Any]) -> dict[str, Any]:
    response = await client.post(f"/fhir/{resource['resourceType']}", json=resource)
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


async def stored(client: httpx.AsyncClient, resource: dict[str, Any]) -> dict[str, Any]:
    response = await client.get(f"/fhir/{resource['resourceType']}/{resource['id']}")
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


async def found_by_label(client: httpx.AsyncClient, rtype: str, code: str) -> set[str]:
    response = await client.get(f"/fhir/{rtype}", params={"_security": f"{ACT}|{code}", "_count": "100"})
    assert response.status_code == 200, response.text
    return {e["resource"]["id"] for e in response.json().get("entry", [])}
