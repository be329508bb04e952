"""Bulk Data Access 2.0 over HTTP: kick-off, status polling, cancel, file download.

- ``GET|POST [base]/$export``, ``[base]/Patient/$export``, ``[base]/Group/[id]/$export`` with
  ``Prefer: respond-async`` → 202 + ``Content-Location: [base]/bulk-status/<job>``.
- ``GET [base]/bulk-status/<job>`` → 202 (``X-Progress``, ``Retry-After``) while queued or running; 200 and the
  manifest when done; the job's OperationOutcome (5xx) when it failed. ``DELETE`` cancels (202) and deletes
  its files. ``GET [base]/bulk-files/<job>/<n>.ndjson`` streams one file.
- Status, cancel and download belong to the client that started the job (same ``client_id``): anyone else gets
  the same 404 as for a job that does not exist.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, FastAPI
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from fhir_server.api import context, operations
from fhir_server.api.negotiation import negotiate, parse_prefer, read_body
from fhir_server.api.responses import json_response
from fhir_server.bulk import audit
from fhir_server.bulk.groups import managed_for
from fhir_server.bulk.request import Forbidden, pairs_from_parameters, parse
from fhir_server.bulk.runner import ExportRunner
from fhir_server.fhir import instant, jsonio
from fhir_server.fhir.outcome import BadRequest, FHIRError, NotFound, information
from fhir_server.repository.search import query_pairs
from fhir_server.security.caller import Caller
from fhir_server.store.export_jobs import ExportJob

NDJSON = "application/fhir+ndjson"
RETRY_AFTER = "2"


def runner(request: Request) -> ExportRunner:
    return request.app.state.bulk_export  # type: ignore[no-any-return]


def install(app: FastAPI, server: context.Server) -> ExportRunner:
    """Wire the runner (started and stopped by the app's lifespan) and the status/file routes."""
    bulk = ExportRunner(server.store, server.gate, server.settings, server.audit)
    app.state.bulk_export = bulk
    r = APIRouter(prefix="/fhir")
    r.add_api_route("/bulk-status/{job_id}", status, methods=["GET"])
    r.add_api_route("/bulk-status/{job_id}", cancel, methods=["DELETE"])
    r.add_api_route("/bulk-files/{job_id}/{name}", download, methods=["GET"])
    app.include_router(r)
    return bulk


class TooManyJobs(FHIRError):
    def __init__(self, limit: int) -> None:
        FHIRError.__init__(self, 429, "throttled", f"this client already has {limit} bulk exports queued or "
                           "running (FHIR_EXPORT_MAX_JOBS_PER_CLIENT); wait for one to finish or cancel one",
                           headers={"Retry-After": "30"})


async def _pairs(request: Request) -> tuple[list[tuple[str, str]], bool]:
    pairs = query_pairs(request.url.query)
    if request.method != "POST":
        return pairs, False
    body = await read_body(request, context.server(request).settings.max_body_bytes)
    if body.strip():
        try:
            parsed = jsonio.loads(body)
        except jsonio.InvalidJSON as exc:
            raise BadRequest(str(exc), code="structure") from None
        pairs += pairs_from_parameters(parsed)
    return pairs, True


async def _kickoff(request: Request, level: str, group: str | None = None) -> Response:
    neg = negotiate(request)
    srv = context.server(request)
    caller = context.caller(request)
    header = request.headers.get("prefer", "")
    if "respond-async" not in {p.strip().lower() for p in header.replace(";", ",").split(",")}:
        raise BadRequest("a bulk export runs asynchronously: send the header 'Prefer: respond-async'",
                         ["Prefer"])
    lenient = parse_prefer(header).get("handling", "strict").lower() == "lenient"
    pairs, post = await _pairs(request)
    req = parse(level, pairs, caller, lenient=lenient, post=post, group=group)
    if group is not None:
        await _check_group(request, caller, group)
    url = str(request.url) if not post else str(request.url).split("?", 1)[0]
    job = ExportJob(uuid.uuid4().hex, caller, url, req.to_json(), instant.now())
    bulk = runner(request)
    if not await bulk.jobs.create(job, srv.settings.export_max_jobs_per_client):
        raise TooManyJobs(srv.settings.export_max_jobs_per_client)
    bulk.wake()
    location = f"{context.base_url(request)}/bulk-status/{job.id}"
    return json_response(information(f"export {job.id} accepted; poll {location}"), 202,
                         {"Content-Location": location}, neg)


async def _check_group(request: Request, caller: Caller, group: str) -> None:
    if not caller.allows("Group", "r"):
        raise Forbidden("this client's scopes do not allow reading Group (system/Group.r)")
    srv = context.server(request)
    found = await srv.store.read("Group", group)
    if found is None or found.deleted:
        raise NotFound(f"Group/{group} is not known")
    if not managed_for(caller, found) and not await srv.gate.visible(caller, [found]):
        raise NotFound(f"Group/{group} is not known")


async def export_system(request: Request) -> Response:
    return await _kickoff(request, "system")


async def export_patient(request: Request, rtype: str) -> Response:
    return await _kickoff(request, "patient")


async def export_group(request: Request, rtype: str, id: str) -> Response:
    return await _kickoff(request, "group", id)


DEFINITION = "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/export"
operations.register(operations.Operation("export", "system", ("*",), ("GET", "POST"), export_system, DEFINITION))
operations.register(operations.Operation("export", "type", ("Patient",), ("GET", "POST"), export_patient,
                                         "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/patient-export"))
operations.register(operations.Operation("export", "instance", ("Group",), ("GET", "POST"), export_group,
                                         "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/group-export"))


async def _own_job(request: Request, job_id: str) -> ExportJob:
    """The job, if it exists and belongs to this caller; otherwise the 404 of a job that does not exist."""
    job = await runner(request).jobs.get(job_id)
    caller = context.caller(request)
    if job is None or (job.caller.client_id, job.caller.user) != (caller.client_id, caller.user):
        raise NotFound(f"no bulk export {job_id!r} (it may have expired or been cancelled)")
    return job


def manifest(job: ExportJob, base: str, requires_token: bool) -> dict[str, Any]:
    def url(entry: dict[str, Any]) -> str:
        return f"{base}/bulk-files/{job.id}/{entry['file']}.ndjson"

    return {
        "transactionTime": job.transaction_time,
        "request": job.request,
        "requiresAccessToken": requires_token,
        "output": [{"type": o["type"], "url": url(o), "count": o["count"]} for o in job.output],
        "error": [{"type": e["type"], "url": url(e)} for e in job.errors],
    }


async def status(request: Request, job_id: str) -> Response:
    job = await _own_job(request, job_id)
    if job.status in ("accepted", "running"):
        progress = job.progress or ("queued" if job.status == "accepted" else "running")
        return Response(status_code=202, headers={"X-Progress": progress, "Retry-After": RETRY_AFTER})
    headers = {"Expires": _expires_at(job.expires)} if job.expires else {}
    if job.status == "failed":
        return json_response(job.outcome, 500, headers)
    srv = context.server(request)
    body = manifest(job, context.base_url(request), srv.settings.auth != "off")
    return Response(jsonio.dumps(body), 200, headers, media_type="application/json")


async def cancel(request: Request, job_id: str) -> Response:
    job = await _own_job(request, job_id)
    await runner(request).jobs.delete(job.id)
    return json_response(information(f"export {job_id} cancelled; its files are deleted"), 202)


async def download(request: Request, job_id: str, name: str) -> Response:
    job = await _own_job(request, job_id)
    number = name.removesuffix(".ndjson")
    entries = {str(e["file"]): e for e in [*job.output, *job.errors]} if job.status == "completed" else {}
    if not name.endswith(".ndjson") or number not in entries:
        raise NotFound(f"export {job_id} has no file {name!r}")
    bulk = runner(request)
    url = f"{context.base_url(request)}/bulk-files/{job_id}/{name}"
    bulk.record(audit.export_event(context.caller(request), f"GET {url}", "0",
                                   f"bulk export file {name} ({entries[number]['type']}) of {job.request}",
                                   context.base_url(request)))
    chunks = bulk.jobs.chunks(job.id, int(number))
    first = await anext(chunks, None)

    async def stream() -> AsyncIterator[bytes]:
        if first is not None:
            yield first
            async for chunk in chunks:
                yield chunk

    return StreamingResponse(stream(), 200, media_type=NDJSON)


def _expires_at(epoch: float) -> str:
    return instant.http_date(instant.format_instant(datetime.fromtimestamp(epoch, UTC)))
