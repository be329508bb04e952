"""Helpers for the transaction/batch tests: Bundle and entry builders, and a look into the SQLite file."""

from __future__ import annotations

import base64
import os
import sqlite3
from pathlib import Path
from typing import Any

import httpx
import orjson

ORG = "urn:oid:2.16.840.1.113883.3.1"


def transaction(*entries: Any) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": "transaction", "entry": list(entries)}


def batch(*entries: Any) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": "batch", "entry": list(entries)}


def entry(method: str, url: str, resource: dict[str, Any] | None = None, full_url: str | None = None,
          **request: Any) -> dict[str, Any]:
    """``entry("POST", "Patient", patient(), "urn:uuid:…", ifNoneExist="identifier=x|1")``."""
    out: dict[str, Any] = {"request": {"method": method, "url": url, **request}}
    if resource is not None:
        out["resource"] = resource
    if full_url is not None:
        out["fullUrl"] = full_url
    return out


def json_patch(operations: Any) -> dict[str, Any]:
    """A JSON Patch as a transaction carries it: a Binary holding the patch, base64-encoded."""
    data = base64.b64encode(orjson.dumps(operations)).decode()
    return {"resourceType": "Binary", "contentType": "application/json-patch+json", "data": data}


def observation(subject: str, **fields: Any) -> dict[str, Any]:
    return {"resourceType": "Observation", "status": "final", "code": {"text": "heart rate"},
            "subject": {"reference": subject}, **fields}


def identifier(value: str, system: str = "https://example.org/mrn") -> list[dict[str, str]]:
    return [{"system": system, "value": value}]


async def post_bundle(client: httpx.AsyncClient, bundle: dict[str, Any], **headers: str) -> httpx.Response:
    return await client.post("/fhir", json=bundle, headers=headers)


def assert_entry_error(response: httpx.Response, status: int, index: int) -> dict[str, Any]:
    """A transaction that failed as a whole: ``status``, an OperationOutcome that names ``Bundle.entry[index]``."""
    assert response.status_code == status, response.text
    body = response.json()
    assert body["resourceType"] == "OperationOutcome", body
    issue = body["issue"][0]
    assert f"Bundle.entry[{index}]" in issue["diagnostics"] + " ".join(issue.get("expression", [])), issue
    return issue  # type: ignore[no-any-return]


def ref_id(location: str) -> str:
    """``Patient/abc/_history/1`` → ``abc``."""
    return location.split("/")[1]


class StoreFile:
    """Row counts straight from the SQLite file (``resource``, ``history`` and every ``idx_*`` table)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @property
    def available(self) -> bool:
        return os.environ.get("STORE", "sqlite") == "sqlite" and self.path.exists()

    def counts(self) -> dict[str, int]:
        if not self.available:
            return {}
        with sqlite3.connect(self.path) as conn:
            tables = [r[0] for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND (name IN ('resource', 'history')"
                " OR name LIKE 'idx%')")]
            return {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in tables}
