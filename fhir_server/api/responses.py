"""Building FHIR HTTP responses: bodies (stored bytes served as-is), ETag, Location, Last-Modified."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from fhir_server.api.negotiation import FHIR_JSON, Negotiated
from fhir_server.fhir import instant, jsonio
from fhir_server.fhir.outcome import Issue, information
from fhir_server.store.base import ResourceVersion


def etag(version_id: int | str) -> str:
    return f'W/"{version_id}"'


def version_headers(version: ResourceVersion, base: str | None = None) -> dict[str, str]:
    headers = {"ETag": etag(version.version_id), "Last-Modified": instant.http_date(version.last_updated)}
    if base is not None:
        headers["Location"] = f"{base}/{version.resource_type}/{version.id}/_history/{version.version_id}"
    return headers


def json_response(content: Any, status: int = 200, headers: dict[str, str] | None = None,
                  neg: Negotiated | None = None) -> Response:
    """Serialise a dict (or pass stored bytes through; re-indented only for ``_pretty``)."""
    pretty = neg.pretty if neg else False
    if isinstance(content, bytes):
        body = jsonio.pretty(content) if pretty else content
    else:
        body = jsonio.dumps(content, pretty=pretty)
    media = neg.media_type if neg else FHIR_JSON
    return Response(body, status, headers, media_type=f"{media}; charset=utf-8")


def write_response(neg: Negotiated, status: int, version: ResourceVersion, base: str, message: str,
                   warnings: list[Issue] | None = None) -> Response:
    """The answer to create/update/patch, honouring ``Prefer: return=``; ``warnings`` (e.g. an unknown
    ``meta.profile``) travel in the OperationOutcome a client asks for with ``Prefer: return=OperationOutcome``."""
    headers = version_headers(version, base)
    if neg.prefer_return == "minimal":
        return Response(b"", status, headers)
    if neg.prefer_return == "OperationOutcome":
        outcome = information(message)
        outcome["issue"] += [w.to_json() for w in warnings or []]
        return json_response(outcome, status, headers, neg)
    return json_response(version.body, status, headers, neg)
