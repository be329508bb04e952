"""The background worker that runs export jobs, as the job's stored caller, through the one gate.

Each server process runs ``FHIR_EXPORT_WORKERS`` loops. A loop claims a job from the store (a lease), runs it
batch by batch — gate.visible on the batch, gate.disclosed per resource, ``_elements`` if asked — and writes
NDJSON chunks; between batches it yields to the event loop, so requests go on, and renews its lease. A DELETE
(cancel) makes the next renewal fail and the loop drops the job. A clean shutdown gives the job back (it starts
over on the next claim); a crash leaves the lease to expire, and any worker then starts it over — in both cases
its chunks are wiped first, and files are listed only once the job completed, so nothing half-written is served.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from typing import Any

from fhir_server.bulk import audit, sources
from fhir_server.bulk.files import FileSet
from fhir_server.bulk.request import ExportRequest
from fhir_server.consent.gate import Gate
from fhir_server.consent.gated_search import gated_search
from fhir_server.fhir import jsonio
from fhir_server.fhir.outcome import Issue, operation_outcome
from fhir_server.fhir.search.ast import Filter, Has, SearchPage, SearchQuery
from fhir_server.fhir.summary import subset
from fhir_server.repository.writebehind import WriteBehind
from fhir_server.security.caller import Caller
from fhir_server.settings import Settings
from fhir_server.store.base import ResourceVersion, Store
from fhir_server.store.export_jobs import ExportJob, ExportJobs

log = logging.getLogger("fhir_server")


def _joins(f: Filter | Has) -> bool:
    return isinstance(f, Has) or f.chain is not None or f.name == "_list"


class Cancelled(Exception):
    """The job was deleted (or taken over) while running."""


class ExportRunner:
    def __init__(self, store: Store, gate: Gate, settings: Settings, audit_log: WriteBehind | None) -> None:
        self.store = store
        self.jobs: ExportJobs = store.export_jobs()
        self.gate = gate
        self.settings = settings
        self.audit = audit_log
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        for i in range(self.settings.export_workers):
            self._tasks.append(asyncio.create_task(self._loop(f"{self.owner}/{i}"), name=f"export-{i}"))
        if self.settings.export_workers:
            self._tasks.append(asyncio.create_task(self._sweep(), name="export-sweeper"))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()

    def wake(self) -> None:
        """A job was just accepted: start at once instead of at the next poll."""
        self._wake.set()

    def record(self, event: dict[str, Any]) -> None:
        if self.audit is not None:
            self.audit.submit(event)

    async def _loop(self, owner: str) -> None:
        while True:
            try:
                job = await self._claim(owner)
            except Exception:  # noqa: BLE001 - the store may be briefly unavailable; try again later
                log.exception("export: claiming a job failed")
                job = None
            if job is None:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.settings.export_poll_seconds)
                continue
            try:
                await self.run_job(job, owner)
            except asyncio.CancelledError:  # shutdown: give the job back, it starts over on the next claim
                with contextlib.suppress(Exception):
                    await self.jobs.release(job.id, owner)
                raise
            except Cancelled:
                log.info("export %s cancelled", job.id)
            except Exception:  # noqa: BLE001 - a failed job is reported to its client, the loop goes on
                log.exception("export %s failed", job.id)
                await self._fail(job, owner)

    async def _claim(self, owner: str) -> ExportJob | None:
        """Claim a job; cancelled meanwhile (shutdown), let the claim finish and give the job back, so a job is
        never left ``running`` by a worker that is gone (it would wait for its lease to expire)."""
        claim = asyncio.ensure_future(self.jobs.claim(owner, time.time(), self.settings.export_lease_seconds))
        try:
            return await asyncio.shield(claim)
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                job = await claim
                if job is not None:
                    await self.jobs.release(job.id, owner)
            raise

    async def _fail(self, job: ExportJob, owner: str) -> None:
        job.status = "failed"
        job.outcome = operation_outcome([Issue("fatal", "exception", "the export failed on the server; the "
                                               "details were logged there. Start a new export.")])
        job.expires = time.time() + self.settings.export_retention_seconds
        with contextlib.suppress(Exception):
            await self.jobs.finish(job, owner)
            self.record(audit.export_event(job.caller, job.request, "8", "bulk export failed", self._base(job)))

    def _base(self, job: ExportJob) -> str:
        """The FHIR base the job was started on (for the AuditEvent's observer)."""
        return self.settings.base_url or job.request.split("/$export")[0].rsplit("/fhir", 1)[0] + "/fhir"

    async def run_job(self, job: ExportJob, owner: str) -> None:
        """Run one claimed job to its end (the loop calls it; the benchmark calls it directly)."""
        req = ExportRequest.from_json(job.params)
        files = FileSet(self.jobs, job.id, self.settings.export_file_bytes)
        wanted = set(req.types)
        disclosures = audit.Disclosures(self.gate, job.caller)
        renew_at = time.monotonic() + self.settings.export_lease_seconds / 3
        async for batch in await self._source(req, job):
            batch = [v for v in batch if v.resource_type in wanted and v.last_updated <= job.transaction_time]
            visible = await self.gate.visible(job.caller, batch)
            self._write(job, req, files, visible)
            disclosures.add(visible)
            await files.flush_full()
            if time.monotonic() >= renew_at:
                await self._renew(job, owner, f"{files.resources} resources exported")
                renew_at = time.monotonic() + self.settings.export_lease_seconds / 3
            await asyncio.sleep(0)  # let requests in between batches
        await files.close()
        if req.notes:
            await files.add_file("OperationOutcome", [jsonio.dumps(operation_outcome(req.notes))], error=True)
        job.status, job.output, job.errors = "completed", files.output, files.errors
        job.progress = f"{files.resources} resources exported"
        job.expires = time.time() + self.settings.export_retention_seconds
        if not await self.jobs.finish(job, owner):
            raise Cancelled(job.id)
        self.record(audit.export_event(job.caller, job.request, "0",
                                       f"bulk export of {files.resources} resources in {len(files.output)} files",
                                       self._base(job), group=f"Group/{req.group}" if req.group else None))
        for event in disclosures.events(job.request, self._base(job)):
            self.record(event)

    async def _renew(self, job: ExportJob, owner: str, progress: str) -> None:
        lease = time.time() + self.settings.export_lease_seconds
        if not await self.jobs.heartbeat(job.id, owner, lease, progress):
            raise Cancelled(job.id)

    def _write(self, job: ExportJob, req: ExportRequest, files: FileSet, visible: list[ResourceVersion]) -> None:
        caller, gate = job.caller, self.gate
        for v in visible:
            if v.body is None:
                continue
            body = gate.disclosed(caller, v)
            chosen = req.elements_for(v.resource_type)
            if chosen:
                body = jsonio.dumps(subset(jsonio.loads(body), None, chosen))
            files.add(v.resource_type, body)

    def _search(self, caller: Caller) -> sources.Search:
        """The search ``_typeFilter`` and compartments run on: the store's, except that a Care Partner's chains,
        ``_has`` and ``_list`` join through visible resources only (the gated search), as in a plain search."""
        async def search(query: SearchQuery) -> SearchPage:
            if not caller.is_administrator and any(_joins(f) for f in query.filters):
                return await gated_search(self.store, self.gate, caller, query)
            return await self.store.search(query)

        return search

    async def _source(self, req: ExportRequest, job: ExportJob) -> sources.Batches:
        until = job.transaction_time
        search = self._search(job.caller)
        if req.level == "system":
            return sources.system_level(req, self.jobs, search, until)
        patients = await self._patients(req, job)
        return sources.compartment_level(req, patients, self.jobs, search, until)

    async def _patients(self, req: ExportRequest, job: ExportJob) -> list[str]:
        """The export's patients: a Group's active Patient members, or every Patient; ``patient`` narrows."""
        if req.level == "group":
            from fhir_server.bulk.groups import member_ids

            group = await self.store.read("Group", req.group or "")
            ids = member_ids(group) if group is not None and not group.deleted else []
        else:
            ids = [v.id async for batch in self.jobs.scan("Patient", None, job.transaction_time, sources.BATCH)
                   for v in batch]
        if req.patients is not None:
            chosen = set(req.patients)
            ids = [i for i in ids if i in chosen]
        return ids

    async def _sweep(self) -> None:
        """Delete jobs (and their files) whose retention passed."""
        while True:
            try:
                for job_id in await self.jobs.expired(time.time()):
                    await self.jobs.delete(job_id)
            except Exception:  # noqa: BLE001 - try again at the next round
                log.exception("export: sweeping expired jobs failed")
            await asyncio.sleep(min(60.0, max(0.2, self.settings.export_retention_seconds / 4)))
