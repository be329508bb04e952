"""Helpers for the ASCMI HTTP tests: the example forms, posting them, counting what is stored, and comparing
stored resources with the example bundles by shape (ids, server meta and clock fields left out)."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

FORMS = Path(__file__).resolve().parents[2] / "examples" / "forms"
BASE = "https://ascmi.example.org/fhir"
LOCATION = re.compile(r"^http://test/fhir/Consent/(?P<id>[^/]+)/_history/(?P<vid>\d+)$")
#: Elements set from the server's clock at intake, not from the form.
CLOCK_FIELDS = {"Provenance": ("recorded",), "DocumentReference": ("date",)}


def example(name: str) -> dict[str, Any]:
    return copy.deepcopy(json.loads((FORMS / f"{name}.json").read_text(encoding="utf-8")))


def example_bundle(name: str) -> dict[str, Any]:
    return json.loads((FORMS / f"{name}.bundle.json").read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def names(kind: str | None = None) -> list[str]:
    found = sorted(p.name[:-5] for p in FORMS.glob("*.json") if not p.name.endswith(".bundle.json"))
    if kind is None:
        return found
    return [n for n in found if ("revokes" in example(n)) == (kind == "revocation")]


async def post_form(client: httpx.AsyncClient, form: dict[str, Any]) -> httpx.Response:
    response = await client.post("/ascmi/forms", json=form)
    assert response.status_code == 201, response.text
    return response


async def post_revocation(client: httpx.AsyncClient, revocation: dict[str, Any]) -> httpx.Response:
    response = await client.post("/ascmi/revocations", json=revocation)
    assert response.status_code == 201, response.text
    return response


def consent_ref(response: httpx.Response) -> str:
    """``Consent/<id>`` from the Location of a 201."""
    match = LOCATION.match(response.headers["location"])
    assert match, response.headers["location"]
    return f"Consent/{match['id']}"


async def get(client: httpx.AsyncClient, ref: str) -> dict[str, Any]:
    response = await client.get(f"/fhir/{ref}")
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


async def search(client: httpx.AsyncClient, query: str) -> list[dict[str, Any]]:
    response = await client.get(f"/fhir/{query}")
    assert response.status_code == 200, response.text
    return [e["resource"] for e in response.json().get("entry", []) if e.get("search", {}).get("mode") != "outcome"]


async def total(client: httpx.AsyncClient, rtype: str | None = None) -> int:
    """Every stored version (of one type, or of all types): grows with any write."""
    path = f"/fhir/{rtype}/_history" if rtype else "/fhir/_history"
    response = await client.get(path, params={"_count": "1"})
    assert response.status_code == 200, response.text
    return int(response.json()["total"])


async def count(client: httpx.AsyncClient, rtype: str) -> int:
    response = await client.get(f"/fhir/{rtype}", params={"_summary": "count"})
    assert response.status_code == 200, response.text
    return int(response.json()["total"])


async def stored_from_response(client: httpx.AsyncClient, response: httpx.Response) -> list[dict[str, Any]]:
    """The resource version each entry of a transaction-response names, read back from the store."""
    return [await get(client, e["response"]["location"]) for e in response.json()["entry"]]


def _walk_references(node: Any, resolve: Any) -> Any:
    if isinstance(node, dict):
        return {k: (resolve(v) if k == "reference" and isinstance(v, str) else _walk_references(v, resolve))
                for k, v in node.items()}
    if isinstance(node, list):
        return [_walk_references(v, resolve) for v in node]
    return node


def shape(resource: dict[str, Any], types: dict[str, str] | None = None) -> str:
    """``resource`` without ids, server meta or clock fields; each reference becomes just its type."""
    types = types or {}

    def resolve(ref: str) -> str:
        if ref in types:
            return types[ref]
        match = re.search(r"([A-Z][A-Za-z]+)/[^/]+(/_history/[^/]+)?$", ref)
        return match.group(1) if match else ref

    out = {k: v for k, v in resource.items() if k not in ("id", *CLOCK_FIELDS.get(resource["resourceType"], ()))}
    meta = {k: v for k, v in (out.pop("meta", None) or {}).items() if k not in ("versionId", "lastUpdated")}
    if meta:
        out["meta"] = meta
    return json.dumps(_walk_references(out, resolve), sort_keys=True)


def expected_shapes(bundle: dict[str, Any]) -> dict[str, list[str]]:
    """Resource type → the sorted shapes of the example bundle's resources."""
    types = {e["fullUrl"]: e["resource"]["resourceType"] for e in bundle["entry"] if e.get("fullUrl")}
    return _by_type(shape(e["resource"], types) for e in bundle["entry"])


def _by_type(shapes: Iterator[str] | list[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for s in shapes:
        out.setdefault(json.loads(s)["resourceType"], []).append(s)
    return {k: sorted(v) for k, v in out.items()}


def actual_shapes(resources: list[dict[str, Any]]) -> dict[str, list[str]]:
    return _by_type([shape(r) for r in resources])


def issues(response: httpx.Response) -> list[dict[str, Any]]:
    body = response.json()
    assert body["resourceType"] == "OperationOutcome", body
    return body["issue"]  # type: ignore[no-any-return]


def expressions(response: httpx.Response) -> set[str]:
    return {e for i in issues(response) for e in i.get("expression", [])}
