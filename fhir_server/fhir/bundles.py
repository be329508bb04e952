"""Response Bundles for history and search (pure: versions in, Bundle dict out).

Stored bytes are spliced into the Bundle as ``orjson.Fragment``s, so serving a page of resources parses none of
them — unless ``_summary``/``_elements`` ask for a subset.
"""

from __future__ import annotations

from typing import Any
from uuid import uuid4

import orjson

from fhir_server.fhir import instant, jsonio
from fhir_server.fhir.summary import subset
from fhir_server.store.base import ResourceVersion


def resource_content(version: ResourceVersion, summary: str | None = None,
                     elements: list[str] | None = None) -> Any:
    """The resource of an entry: stored bytes as they are, or the requested subset."""
    assert version.body is not None
    if summary in (None, "false") and not elements:
        return orjson.Fragment(version.body)
    return subset(jsonio.loads(version.body), summary, elements)


def _status(version: ResourceVersion) -> str:
    if version.deleted:
        return "204 No Content" if version.method == "DELETE" else "200 OK"
    return "201 Created" if version.version_id == 1 or version.method == "POST" else "200 OK"


def history_bundle(versions: list[ResourceVersion], base: str, self_link: str, next_link: str | None,
                   total: int | None) -> dict[str, Any]:
    """A ``history`` Bundle (http.html#history): newest first, with request and response per entry."""
    entries = []
    for v in versions:
        url = f"{v.resource_type}/{v.id}"
        entry: dict[str, Any] = {"fullUrl": f"{base}/{url}"}
        if not v.deleted:
            entry["resource"] = resource_content(v)
        method = v.method if v.method in ("POST", "PUT", "PATCH", "DELETE") else "PUT"
        entry["request"] = {"method": method, "url": url if method != "POST" else v.resource_type}
        entry["response"] = {"status": _status(v), "etag": f'W/"{v.version_id}"',
                             "lastModified": v.last_updated}
        entries.append(entry)
    return _bundle("history", entries, self_link, next_link, total)


def searchset_bundle(matches: list[ResourceVersion], includes: list[ResourceVersion], base: str,
                     self_link: str, next_link: str | None, total: int | None, *, summary: str | None = None,
                     elements: list[str] | None = None, issues: dict[str, Any] | None = None) -> dict[str, Any]:
    """A ``searchset`` Bundle; ``issues`` (an OperationOutcome) goes in as an ``outcome`` entry."""
    entries: list[dict[str, Any]] = []
    if summary != "count":
        for mode, versions in (("match", matches), ("include", includes)):
            for v in versions:
                entries.append({"fullUrl": f"{base}/{v.resource_type}/{v.id}",
                                "resource": resource_content(v, summary, elements),
                                "search": {"mode": mode}})
    if issues:
        entries.append({"resource": issues, "search": {"mode": "outcome"}})
    return _bundle("searchset", entries, self_link, next_link, total)


def _bundle(kind: str, entries: list[dict[str, Any]], self_link: str, next_link: str | None,
            total: int | None) -> dict[str, Any]:
    bundle: dict[str, Any] = {"resourceType": "Bundle", "id": str(uuid4()), "meta": {"lastUpdated": instant.now()},
                              "type": kind}
    if total is not None:
        bundle["total"] = total
    links = [{"relation": "self", "url": self_link}]
    if next_link:
        links.append({"relation": "next", "url": next_link})
    bundle["link"] = links
    if entries:  # FHIR forbids empty arrays
        bundle["entry"] = entries
    return bundle
