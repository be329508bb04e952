"""The edge where exceptions become OperationOutcomes.

Client errors are :class:`FHIRError`; routing errors (no such path, wrong method) come from Starlette; anything
else is a bug: the client gets a generic 500 OperationOutcome and the detail goes to the log, never outward.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fhir_server.api.responses import json_response
from fhir_server.fhir.outcome import FHIRError, Issue, operation_outcome

log = logging.getLogger("fhir_server")

_HTTP_CODES = {404: "not-found", 405: "not-supported", 413: "too-costly", 415: "not-supported"}


def error_response(exc: FHIRError) -> Response:
    return json_response(exc.outcome(), exc.status, exc.headers or None)


async def _fhir_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, FHIRError)
    return error_response(exc)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        text = f"no FHIR endpoint at {request.url.path}"
    elif exc.status_code == 405:
        text = f"{request.method} is not supported on {request.url.path}"
    else:
        text = str(exc.detail)
    issue = Issue("error", _HTTP_CODES.get(exc.status_code, "processing"), text)
    return json_response(operation_outcome([issue]), exc.status_code, dict(exc.headers or {}))


async def _validation_error(_: Request, exc: Exception) -> Response:
    return json_response(operation_outcome([Issue("error", "invalid", f"invalid request: {exc}")]), 400)


class CatchAll:
    """Outermost guard: an unexpected exception becomes a generic 500 OperationOutcome, logged inward."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception:
            # The route template, not the path: a path can carry an identifier a client chose (no PHI in logs).
            route = getattr(scope.get("route"), "path", "unmatched")
            log.exception("internal error on %s %s", scope.get("method"), route)
            if started:
                raise
            outcome = operation_outcome([Issue("fatal", "exception",
                                               "internal server error; the details were logged on the server")])
            await json_response(outcome, 500)(scope, receive, send)


def install(app: FastAPI) -> None:
    app.add_exception_handler(FHIRError, _fhir_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_middleware(CatchAll)
