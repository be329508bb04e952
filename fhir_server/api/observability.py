"""Operations endpoints and the request edge: ``GET /metrics``, ``GET /health/ready``, request ids, access logs.

- ``/metrics`` (Prometheus text) and ``/health``, ``/health/ready`` are public: load balancers and scrapers
  call them without a SMART token. They show no health information, only counts and timings. Set
  ``FHIR_METRICS_TOKEN`` to require ``Authorization: Bearer <token>`` on ``/metrics``.
- ``/health`` is liveness (the process answers); ``/health/ready`` is readiness: the store answers a read
  within two seconds (503 otherwise), so a proxy stops sending traffic to a worker whose store is gone.
- Every response carries ``X-Request-ID``: the client's, when it sent a plausible one, else a new one; every log
  line written while the request runs carries it too (``fhir_server.logs``).
- One access log line per request, with the route *template*, never the path or query (they can hold PHI).
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import re
import time
import uuid

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fhir_server import logs, metrics
from fhir_server.api import context
from fhir_server.api.responses import json_response
from fhir_server.fhir.outcome import Issue, operation_outcome

access_log = logging.getLogger("fhir_server.access")
log = logging.getLogger("fhir_server")

REQUEST_ID_HEADER = "x-request-id"
_PLAUSIBLE_ID = re.compile(r"[A-Za-z0-9._:@/+=-]{1,128}")
READY_TIMEOUT_SECONDS = 2.0


def _route_template(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else "unmatched"


class RequestEdge:
    """Request id, per-route metrics and the access log line, around everything else (pure ASGI: no buffering of
    bodies, and the request id is a context variable the handlers' log lines see)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = ""
        for name, value in scope.get("headers") or []:
            if name == b"x-request-id":
                given = value.decode("latin-1").strip()
                break
        rid = given if _PLAUSIBLE_ID.fullmatch(given) else uuid.uuid4().hex
        token = logs.request_id.set(rid)
        status = 500
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                headers = [(k, v) for k, v in message.get("headers") or [] if k.lower() != b"x-request-id"]
                message = {**message, "headers": [*headers, (b"x-request-id", rid.encode("latin-1"))]}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            route = _route_template(scope)
            method = str(scope.get("method", ""))
            metrics.REQUESTS.labels(method, route, str(status)).inc()
            metrics.REQUEST_SECONDS.labels(method, route).observe(elapsed)
            access_log.info("request", extra={"method": method, "route": route, "status": status,
                                              "duration_ms": round(elapsed * 1000, 2)})
            logs.request_id.reset(token)


async def metrics_endpoint(request: Request) -> Response:
    expected = context.server(request).settings.metrics_token
    if expected:
        given = request.headers.get("authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {expected}".encode()):
            outcome = operation_outcome([Issue("error", "login", "/metrics needs the metrics bearer token")])
            return json_response(outcome, 401, {"WWW-Authenticate": "Bearer"})
    body, content_type = metrics.render()
    return Response(body, media_type=content_type)


async def ready(request: Request) -> Response:
    """200 when the store answers a read in time; 503 with an OperationOutcome otherwise."""
    store = context.server(request).store
    try:
        await asyncio.wait_for(store.read("Patient", "health-ready-probe"), READY_TIMEOUT_SECONDS)
    except Exception as exc:  # noqa: BLE001 - any failure of the store means "not ready"
        log.warning("readiness check failed", extra={"error": type(exc).__name__})
        outcome = operation_outcome([Issue("error", "transient", f"the {store.name} store does not answer")])
        return json_response(outcome, 503, {"Retry-After": "5"})
    return Response(b'{"status":"ready"}', media_type="application/json")


def install(app: FastAPI) -> None:
    """Routes and the request edge (call last in ``create_app`` so the edge is outermost)."""
    metrics.forget_dead_workers()
    app.add_api_route("/metrics", metrics_endpoint, methods=["GET"], include_in_schema=False)
    app.add_api_route("/health/ready", ready, methods=["GET"], include_in_schema=False)
    app.add_middleware(RequestEdge)


def shutdown() -> None:
    metrics.worker_exited()
