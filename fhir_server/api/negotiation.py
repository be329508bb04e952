"""Content negotiation and request headers: ``_format``/``Accept``, ``_pretty``, ``Prefer``, body limits.

We speak JSON only. XML (or anything else that is not JSON) asked for → 406; an XML body → 415.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from starlette.requests import Request

from fhir_server.fhir import jsonio
from fhir_server.fhir.outcome import BadRequest, NotAcceptable, PayloadTooLarge, UnsupportedMediaType

FHIR_JSON = "application/fhir+json"
JSON_FORMATS = {"json", "application/json", "application/fhir+json", "application/json+fhir", "text/json"}
_JSON_ACCEPT = {"application/fhir+json", "application/json", "application/json+fhir", "*/*", "application/*",
                "text/json"}
_BODY_TYPES = {"application/fhir+json", "application/json", "application/json+fhir", "text/json", ""}


@dataclass(frozen=True, slots=True)
class Negotiated:
    """How to answer: pretty-printed or not, which JSON media type, and the client's ``Prefer`` wishes."""

    pretty: bool
    media_type: str
    prefer_return: str  # minimal | representation | OperationOutcome
    strict: bool  # Prefer: handling=strict


def _media(value: str) -> str:
    return value.split(";", 1)[0].strip().lower()


def parse_prefer(header: str | None) -> dict[str, str]:
    """``Prefer: return=minimal, handling=strict`` → {'return': 'minimal', 'handling': 'strict'}."""
    prefs: dict[str, str] = {}
    for part in (header or "").replace(";", ",").split(","):
        if "=" in part:
            key, _, value = part.partition("=")
            prefs[key.strip().lower()] = value.strip().strip('"')
    return prefs


def negotiate(request: Request) -> Negotiated:
    params = request.query_params
    fmt = params.get("_format")
    media_type = FHIR_JSON
    if fmt is not None:
        # An unencoded "+" (``_format=application/fhir+json``) arrives as a space.
        if _media(fmt).replace(" ", "+") not in JSON_FORMATS:
            raise NotAcceptable(f"_format={fmt!r} is not supported: this server speaks JSON only "
                                "(application/fhir+json)", ["_format"])
    else:
        accept = request.headers.get("accept")
        if accept:
            types = {_media(t) for t in accept.split(",")}
            if not types & _JSON_ACCEPT:
                raise NotAcceptable(f"cannot answer in {accept!r}: this server speaks JSON only "
                                    "(application/fhir+json)")
            if "application/json" in types and FHIR_JSON not in types:
                media_type = "application/json"
    prefer = parse_prefer(request.headers.get("prefer"))
    ret = prefer.get("return", "representation")
    if ret.lower() == "operationoutcome":
        ret = "OperationOutcome"
    elif ret not in ("minimal", "representation"):
        ret = "representation"
    return Negotiated(
        pretty=params.get("_pretty", "false").lower() == "true",
        media_type=media_type,
        prefer_return=ret,
        strict=prefer.get("handling", "lenient").lower() == "strict",
    )


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refusing more than ``limit`` bytes (413) without reading it all into memory."""
    length = request.headers.get("content-length")
    if length and length.isdigit() and int(length) > limit:
        raise PayloadTooLarge(f"the request body is {int(length)} bytes; this server accepts at most {limit}")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"the request body exceeds this server's limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def read_json(request: Request, limit: int, allowed: set[str] | None = None) -> Any:
    """Parse a JSON request body (FHIR resource, Parameters, ASCMI form)."""
    ctype = _media(request.headers.get("content-type", ""))
    if ctype not in (allowed or _BODY_TYPES):
        raise UnsupportedMediaType(f"Content-Type {ctype!r} is not supported: send application/fhir+json")
    body = await read_body(request, limit)
    if not body.strip():
        raise BadRequest("the request body is empty; a JSON resource is required", code="required")
    try:
        return jsonio.loads(body)
    except jsonio.InvalidJSON as exc:
        raise BadRequest(str(exc), code="structure") from None


def string_list(body: dict[str, Any], name: str) -> list[str]:
    """An optional list-of-strings member of an admin JSON body (``scopes``, ``purposes``); 400 naming it otherwise."""
    value = body.get(name) or []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise BadRequest(f"{name} must be a list of strings", [name])
    return value
