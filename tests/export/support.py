"""Helpers for the bulk export tests: kick off, poll to the end, download."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import httpx

ASYNC = {"Prefer": "respond-async", "Accept": "application/fhir+json"}


async def create(client: httpx.AsyncClient, resource: dict[str, Any], **kw: Any) -> dict[str, Any]:
    r = await client.post(f"/fhir/{resource['resourceType']}", json=resource, **kw)
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


async def kickoff(client: httpx.AsyncClient, path: str = "/fhir/$export", headers: dict[str, str] | None = None,
                  **kw: Any) -> str:
    r = await client.get(path, headers={**ASYNC, **(headers or {})}, **kw)
    assert r.status_code == 202, r.text
    return r.headers["content-location"]


async def wait(client: httpx.AsyncClient, status_url: str, headers: dict[str, str] | None = None,
               timeout: float = 30.0) -> httpx.Response:
    deadline = time.monotonic() + timeout
    while True:
        r = await client.get(status_url, headers=headers)
        if r.status_code != 202:
            return r
        assert r.headers["x-progress"] and r.headers["retry-after"]
        assert time.monotonic() < deadline, "the export did not finish"
        await asyncio.sleep(0.05)


async def manifest(client: httpx.AsyncClient, path: str = "/fhir/$export", headers: dict[str, str] | None = None,
                   **kw: Any) -> dict[str, Any]:
    url = await kickoff(client, path, headers, **kw)
    r = await wait(client, url, headers)
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


async def download(client: httpx.AsyncClient, url: str, headers: dict[str, str] | None = None) -> list[bytes]:
    r = await client.get(url, headers=headers)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/fhir+ndjson")
    assert r.content.endswith(b"\n")
    return r.content.splitlines()


async def exported(client: httpx.AsyncClient, m: dict[str, Any], headers: dict[str, str] | None = None
                   ) -> dict[str, list[dict[str, Any]]]:
    """type → resources, from every output file of a manifest (checking each file's count)."""
    out: dict[str, list[dict[str, Any]]] = {}
    for entry in m["output"]:
        lines = await download(client, entry["url"], headers)
        assert len(lines) == entry["count"]
        resources = [json.loads(line) for line in lines]
        assert all(r["resourceType"] == entry["type"] for r in resources)
        out.setdefault(entry["type"], []).extend(resources)
    return out


def ids(resources: list[dict[str, Any]]) -> set[str]:
    return {r["id"] for r in resources}


def local(url: str) -> str:
    """An absolute URL of the app → the path the test client calls."""
    return url.removeprefix("http://test")
