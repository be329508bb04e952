"""The Care Partner web page over HTTP: ``GET /app/`` (the page), ``GET /app/<asset>`` (its files) and
``GET /app/vocabulary.json`` (the code lists the form offers, read from the CodeSystems so a new form revision is
a data change, never a page change). No token: nothing here is patient data (ACCESS.md §A public endpoints).
"""

from __future__ import annotations

import hashlib
from functools import lru_cache

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from fhir_server.api import context
from fhir_server.ascmi.terminology import load_terminology
from fhir_server.fhir import jsonio
from fhir_server.fhir.outcome import NotFound
from fhir_server.webapp.assets import CSP, LANGUAGES, Asset, asset

_SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",  # the sign-in's ?code= must not leak to another site
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}


def _answer(request: Request, body: bytes, media_type: str, etag: str) -> Response:
    """Revalidated on every use (``no-cache`` + a strong ETag): the files carry no version in their names, so an
    upgrade must reach the next page load, and a 304 costs one round trip."""
    headers = {**_SECURITY_HEADERS, "Cache-Control": "no-cache", "ETag": etag}
    tags = {t.strip() for t in request.headers.get("if-none-match", "").split(",")}
    if etag in tags or "*" in tags:
        return Response(status_code=304, headers=headers)
    return Response(body, media_type=media_type, headers=headers)


def _served(request: Request, found: Asset | None, name: str) -> Response:
    if found is None:
        raise NotFound(f"the Care Partner page has no file {name!r}")
    return _answer(request, found.body, found.media_type, found.etag)


async def index(request: Request) -> Response:
    return _served(request, asset("index.html"), "index.html")


async def no_slash(request: Request) -> Response:
    return RedirectResponse("/app/", status_code=308)


@lru_cache(maxsize=8)
def _vocabulary(canonical_base: str) -> Asset:
    t = load_terminology(canonical_base)
    body = jsonio.dumps({
        "languages": list(LANGUAGES),
        "cinSystem": t.canonical.medi_cal_cin,
        "carePartnerTypeSystem": t.canonical.codesystem("care-partner-type"),
        "coveredEntityUrl": t.canonical.structuredefinition("covered-entity"),
        "formTypes": [c for c in t.form_types if c != "REVOCATION" and c not in t.non_sharing_forms],
        "categories": [{"code": c.code, "labels": [x.to_json() for x in c.labels],
                        "minorMayConsent": c.minor_may_consent} for c in t.categories.values()],
        "purposes": list(t.purposes),
        "carePartnerTypes": list(t.care_partner_types),
        "expirationEvents": list(t.expiration_events),
        "relationships": list(t.relationships),
        "signatureMethods": list(t.signature_methods),
    })
    return Asset("vocabulary.json", body, "application/json", '"' + hashlib.sha256(body).hexdigest()[:32] + '"')


async def vocabulary(request: Request) -> Response:
    found = _vocabulary(context.server(request).settings.canonical_base)
    return _answer(request, found.body, found.media_type, found.etag)


async def file(request: Request, name: str) -> Response:
    return _served(request, asset(name), name)


def router() -> APIRouter:
    r = APIRouter()
    r.add_api_route("/app", no_slash, methods=["GET", "HEAD"], include_in_schema=False)
    r.add_api_route("/app/", index, methods=["GET", "HEAD"], include_in_schema=False)
    r.add_api_route("/app/vocabulary.json", vocabulary, methods=["GET", "HEAD"], include_in_schema=False)
    r.add_api_route("/app/{name:path}", file, methods=["GET", "HEAD"], include_in_schema=False)
    return r
