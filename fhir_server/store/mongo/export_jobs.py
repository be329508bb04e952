"""Bulk export jobs on MongoDB: ``export_jobs`` (one document per job) and ``export_chunks`` (the NDJSON files in
chunks of about 1 MiB, far below the 16 MB document limit). See :mod:`fhir_server.store.export_jobs`.

The job's record travels as a JSON string (``doc``) beside the few fields queries need, so nothing a client sent
(a ``_typeFilter`` text, an OperationOutcome) ever becomes a MongoDB key. Claims are one
``find_one_and_update`` (atomic per document): two workers never run the same job.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from bson import Binary
from pymongo import ASCENDING, IndexModel, ReturnDocument

from fhir_server.store.base import ResourceVersion
from fhir_server.store.export_jobs import ACTIVE, ExportJob, quota_key
from fhir_server.store.mongo import names as n
from fhir_server.store.mongo.documents import VERSION_FIELDS, version_from_document

if TYPE_CHECKING:
    from fhir_server.store.mongo.store import MongoStore

JOBS = "export_jobs"
CHUNKS = "export_chunks"
Doc = dict[str, Any]


def _fields(job: ExportJob) -> Doc:
    return {"client_id": quota_key(job.caller), "status": job.status, "owner": job.owner,
            "lease_until": job.lease_until, "expires": job.expires, "doc": json.dumps(job.to_record())}


def _job(doc: Doc) -> ExportJob:
    return ExportJob.from_record(json.loads(doc["doc"]))


class MongoExportJobs:
    def __init__(self, store: MongoStore) -> None:
        self.store = store
        self._ready = False

    async def _schema(self) -> None:
        if self._ready:
            return
        db = self.store.db
        await db[JOBS].create_indexes([
            IndexModel([("client_id", ASCENDING), ("status", ASCENDING)], name="client_status"),
            IndexModel([("status", ASCENDING), ("created", ASCENDING)], name="status_created"),
            IndexModel([("expires", ASCENDING)], name="expires"),
        ])
        await db[CHUNKS].create_indexes([IndexModel([("job", ASCENDING), ("file", ASCENDING), ("chunk", ASCENDING)],
                                                    name="job_file_chunk")])
        self._ready = True

    @property
    def jobs(self) -> Any:
        return self.store.db[JOBS]

    @property
    def chunk_collection(self) -> Any:
        return self.store.db[CHUNKS]

    async def create(self, job: ExportJob, max_active: int) -> bool:
        """Count, then insert: two kick-offs of one client racing on two workers may both pass (the limit is
        then exceeded by at most one per extra worker), a price paid to avoid a lock document per client."""
        await self._schema()
        active = await self.jobs.count_documents({"client_id": quota_key(job.caller), "status": {"$in": list(ACTIVE)}})
        if active >= max_active:
            return False
        await self.jobs.insert_one({"_id": job.id, "created": time.time(), **_fields(job)})
        return True

    async def get(self, job_id: str) -> ExportJob | None:
        await self._schema()
        doc = await self.jobs.find_one({"_id": job_id})
        return None if doc is None else _job(doc)

    async def claim(self, owner: str, now: float, lease_seconds: float) -> ExportJob | None:
        await self._schema()
        before = await self.jobs.find_one_and_update(
            {"$or": [{"status": "accepted"}, {"status": "running", "lease_until": {"$lt": now}}]},
            {"$set": {"status": "running", "owner": owner, "lease_until": now + lease_seconds}},
            sort=[("created", ASCENDING)], return_document=ReturnDocument.BEFORE)
        if before is None:
            return None
        job = _job(before)
        if job.status == "running":  # its worker died: start over, never keep a half-written file
            await self.chunk_collection.delete_many({"job": job.id})
        job.status, job.owner, job.lease_until, job.progress = "running", owner, now + lease_seconds, ""
        await self.jobs.update_one({"_id": job.id, "owner": owner}, {"$set": _fields(job)})
        return job

    async def _update_mine(self, job: ExportJob, owner: str) -> bool:
        result = await self.jobs.update_one({"_id": job.id, "owner": owner, "status": "running"},
                                            {"$set": _fields(job)})
        return bool(result.matched_count)

    async def heartbeat(self, job_id: str, owner: str, lease_until: float, progress: str) -> bool:
        doc = await self.jobs.find_one({"_id": job_id, "owner": owner, "status": "running"})
        if doc is None:
            return False
        job = _job(doc)
        job.lease_until, job.progress = lease_until, progress
        return await self._update_mine(job, owner)

    async def release(self, job_id: str, owner: str) -> None:
        doc = await self.jobs.find_one({"_id": job_id, "owner": owner, "status": "running"})
        if doc is None:
            return
        await self.chunk_collection.delete_many({"job": job_id})
        job = _job(doc)
        job.status, job.owner, job.lease_until = "accepted", None, 0.0
        await self.jobs.update_one({"_id": job_id, "owner": owner}, {"$set": _fields(job)})

    async def finish(self, job: ExportJob, owner: str) -> bool:
        done = ExportJob.from_record(job.to_record())
        done.owner = None
        result = await self.jobs.update_one({"_id": job.id, "owner": owner, "status": "running"},
                                            {"$set": _fields(done)})
        return bool(result.matched_count)

    async def add_chunk(self, job_id: str, file_no: int, chunk_no: int, data: bytes) -> None:
        await self.chunk_collection.replace_one(
            {"_id": f"{job_id}/{file_no}/{chunk_no}"},
            {"job": job_id, "file": file_no, "chunk": chunk_no, "data": Binary(data)}, upsert=True)

    async def delete(self, job_id: str) -> bool:
        await self._schema()
        await self.chunk_collection.delete_many({"job": job_id})
        result = await self.jobs.delete_one({"_id": job_id})
        return bool(result.deleted_count)

    async def chunks(self, job_id: str, file_no: int) -> AsyncIterator[bytes]:
        await self._schema()
        chunk = -1
        while True:
            doc = await self.chunk_collection.find_one({"job": job_id, "file": file_no, "chunk": {"$gt": chunk}},
                                                       sort=[("chunk", ASCENDING)])
            if doc is None:
                return
            chunk = doc["chunk"]
            yield bytes(doc["data"])

    async def expired(self, now: float) -> list[str]:
        await self._schema()
        return [d["_id"] async for d in self.jobs.find({"expires": {"$lt": now}}, {"_id": 1})]

    async def scan(self, resource_type: str | None, since: str | None, until: str,
                   batch: int) -> AsyncIterator[list[ResourceVersion]]:
        """Keyset pages in (lastUpdated, _id) order, one ``find`` per page (no cursor held between pages)."""
        await self._schema()
        base: Doc = {n.TYPE: resource_type} if resource_type else {}
        low: Doc = {"$lte": until}
        if since is not None:
            low["$gt"] = since
        last: tuple[str, str] | None = None
        while True:
            filt: Doc = {**base, n.LU: low, n.DELETED: False}
            if last is not None:
                filt["$or"] = [{n.LU: {"$gt": last[0]}}, {n.LU: last[0], n.ID: {"$gt": last[1]}}]
            docs = await self.store.resources.find(filt, {**VERSION_FIELDS, n.ID: 1}, sort=[(n.LU, 1), (n.ID, 1)],
                                                   limit=batch).to_list(None)
            if not docs:
                return
            last = (docs[-1][n.LU], docs[-1][n.ID])
            yield [version_from_document(d, "PUT") for d in docs]
            if len(docs) < batch:
                return
