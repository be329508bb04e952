"""Helpers for the confidential communications tests: the examples, posting them, reading what was stored."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "confidential-communications"
FORMS = ROOT / "examples" / "forms"
BASE = "https://ascmi.example.org/fhir"
CIN = f"{BASE}/sid/medi-cal-cin"
ACT = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
LOCATION = re.compile(r"^http://test/fhir/Consent/(?P<id>[^/]+)/_history/(?P<vid>\d+)$")
REQUESTS = "/ascmi/confidential-communications"
WITHDRAWALS = "/ascmi/confidential-communications/withdrawals"
SENSITIVE = ["MH", "BH", "PSY", "42CFRPart2", "SUD", "ETH", "HIV", "STD", "SEX", "GENDER", "SDV"]


def example(name: str) -> dict[str, Any]:
    return copy.deepcopy(json.loads((EXAMPLES / f"{name}.json").read_text(encoding="utf-8")))


def form(name: str) -> dict[str, Any]:
    return copy.deepcopy(json.loads((FORMS / f"{name}.json").read_text(encoding="utf-8")))


def request_names() -> list[str]:
    return sorted(p.stem for p in EXAMPLES.glob("*.json") if "individual" in json.loads(p.read_text()))


async def post_request(client: httpx.AsyncClient, body: dict[str, Any], status: int = 201) -> httpx.Response:
    response = await client.post(REQUESTS, json=body)
    assert response.status_code == status, response.text
    return response


def consent_ref(response: httpx.Response) -> str:
    match = LOCATION.match(response.headers["location"])
    assert match, response.headers["location"]
    return f"Consent/{match['id']}"


def created(response: httpx.Response, rtype: str) -> list[str]:
    """``Type/id`` of each resource of that type the transaction created (not those it updated)."""
    refs = [e["response"]["location"].split("/_history")[0] for e in response.json()["entry"]
            if e["response"]["status"].startswith("201")]
    return [r for r in refs if r.startswith(rtype + "/")]


async def get(client: httpx.AsyncClient, ref: str) -> dict[str, Any]:
    response = await client.get(f"/fhir/{ref}")
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


async def search(client: httpx.AsyncClient, query: str) -> list[dict[str, Any]]:
    response = await client.get(f"/fhir/{query}")
    assert response.status_code == 200, response.text
    return [e["resource"] for e in response.json().get("entry", []) if e.get("search", {}).get("mode") == "match"]


async def total(client: httpx.AsyncClient) -> int:
    response = await client.get("/fhir/_history", params={"_count": "1"})
    assert response.status_code == 200, response.text
    return int(response.json()["total"])


def issues(response: httpx.Response) -> list[dict[str, Any]]:
    body = response.json()
    assert body["resourceType"] == "OperationOutcome", body
    return body["issue"]  # type: ignore[no-any-return]


def expressions(response: httpx.Response) -> set[str]:
    return {e for i in issues(response) for e in i.get("expression", [])}


def parameters(*params: tuple[str, str, Any]) -> dict[str, Any]:
    return {"resourceType": "Parameters", "parameter": [{"name": n, k: v} for n, k, v in params]}


def cin(value: str) -> tuple[str, str, Any]:
    return ("patient", "valueIdentifier", {"system": CIN, "value": value})


def about(code: str) -> tuple[str, str, Any]:
    return ("about", "valueCoding", {"system": ACT, "code": code})


def at(time: str) -> tuple[str, str, Any]:
    return ("time", "valueDateTime", time)


async def contact(client: httpx.AsyncClient, *params: tuple[str, str, Any], status: int = 200) -> dict[str, Any]:
    response = await client.post("/fhir/Patient/$communication-contact", json=parameters(*params))
    assert response.status_code == status, response.text
    return response.json()  # type: ignore[no-any-return]


def out(answer: dict[str, Any], name: str) -> list[Any]:
    return [{k: v for k, v in p.items() if k != "name"} for p in answer["parameter"] if p["name"] == name]
