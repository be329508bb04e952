"""Bulk Data export jobs and their files, as the store keeps them (both stores implement :class:`ExportJobs`).

Why in the store: a job must survive a restart and be served by any worker, so its state, its lease and its
files live where every worker looks. Files are kept as *chunks* (about 1 MiB of whole NDJSON lines each) beside
the job, on both stores, so one code path writes and streams them, a file is deleted with its job, and no worker
needs a shared disk. A job's files are listed (in its manifest) only once the job is ``completed``: a half-written
file is never served as complete.

Life of a job::

    accepted --claim--> running --finish--> completed | failed      (DELETE: gone at once, files too)
                          |  lease expired (worker died) → claimed again: its chunks are wiped, it starts over

The runner (``fhir_server/bulk/runner.py``) drives it; the HTTP layer (``api/export.py``) reads it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from fhir_server.security.caller import Caller
from fhir_server.store.base import ResourceVersion

ACTIVE = ("accepted", "running")  # states that count against a client's limit


def quota_key(caller: Caller) -> str:
    """Whose jobs count together against ``FHIR_EXPORT_MAX_JOBS_PER_CLIENT``: the client, or for people signed in
    to the web page (who share its one client id) the client and the person.

    >>> quota_key(Caller("c1")), quota_key(Caller("app", user="ana"))
    ('c1', 'app|user|ana')
    """
    return caller.client_id if caller.user is None else f"{caller.client_id}|user|{caller.user}"


@dataclass(slots=True)
class ExportJob:
    """One kick-off request and what became of it.

    ``caller`` is the caller that started it: the job runs as that caller (the gate decides per resource as it
    would for a read), and only that client may poll, cancel and download. ``params`` is the parsed kick-off
    (``fhir_server.bulk.request.ExportRequest.to_json()``). ``output`` entries are
    ``{"type", "file", "count"}`` (``file`` numbers the chunks' file); ``errors`` entries the same for
    OperationOutcome files. Times: ``transaction_time`` is a FHIR instant; ``lease_until`` and ``expires`` are
    epoch seconds.
    """

    id: str
    caller: Caller
    request: str
    params: dict[str, Any]
    transaction_time: str
    status: str = "accepted"
    progress: str = ""
    output: list[dict[str, Any]] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)
    outcome: dict[str, Any] | None = None  # the OperationOutcome of a failed job
    expires: float | None = None
    owner: str | None = None
    lease_until: float = 0.0

    def to_record(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "caller": {"client_id": self.caller.client_id, "organization": self.caller.organization,
                       "scopes": dict(self.caller.scopes), "purpose": self.caller.purpose,
                       "user": self.caller.user},
            "request": self.request, "params": self.params, "transaction_time": self.transaction_time,
            "status": self.status, "progress": self.progress, "output": self.output, "errors": self.errors,
            "outcome": self.outcome, "expires": self.expires, "owner": self.owner, "lease_until": self.lease_until,
        }

    @classmethod
    def from_record(cls, r: dict[str, Any]) -> ExportJob:
        c = r["caller"]
        caller = Caller(c["client_id"], c.get("organization"), dict(c.get("scopes") or {}), c.get("purpose"),
                        c.get("user"))
        return cls(r["id"], caller, r["request"], r["params"], r["transaction_time"], r["status"],
                   r.get("progress") or "", list(r.get("output") or []), list(r.get("errors") or []),
                   r.get("outcome"), r.get("expires"), r.get("owner"), float(r.get("lease_until") or 0.0))


class ExportJobs(Protocol):
    """Job state, leases, file chunks, and the resource scan an export reads from."""

    async def create(self, job: ExportJob, max_active: int) -> bool:
        """Store a new ``accepted`` job unless its client already has ``max_active`` active jobs (→ False)."""

    async def get(self, job_id: str) -> ExportJob | None: ...

    async def claim(self, owner: str, now: float, lease_seconds: float) -> ExportJob | None:
        """Take the oldest ``accepted`` job, or a ``running`` one whose lease expired (its worker died: its
        chunks are wiped, it starts over), and mark it ``running`` for ``owner`` until ``now + lease_seconds``."""

    async def heartbeat(self, job_id: str, owner: str, lease_until: float, progress: str) -> bool:
        """Extend the lease and record progress; False when the job is gone (cancelled) or no longer ours."""

    async def release(self, job_id: str, owner: str) -> None:
        """Give a running job back (clean shutdown): ``accepted`` again, chunks wiped; the next claim restarts it."""

    async def add_chunk(self, job_id: str, file_no: int, chunk_no: int, data: bytes) -> None: ...

    async def finish(self, job: ExportJob, owner: str) -> bool:
        """Record the final state (``status``, ``output``, ``errors``, ``outcome``, ``expires``) if still ours."""

    async def delete(self, job_id: str) -> bool:
        """Remove a job and its chunks (cancel, expiry); False when there was no such job."""

    def chunks(self, job_id: str, file_no: int) -> AsyncIterator[bytes]:
        """The chunks of one file, in order (streamed: one chunk in memory at a time)."""

    async def expired(self, now: float) -> list[str]:
        """Ids of jobs whose ``expires`` has passed (the sweeper deletes them)."""

    def scan(self, resource_type: str | None, since: str | None, until: str,
             batch: int) -> AsyncIterator[list[ResourceVersion]]:
        """Current, live resources (of one type, or all) with ``since < lastUpdated <= until``, in batches, from
        an index, never holding a cursor open between batches."""
