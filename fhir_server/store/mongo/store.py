"""The production store: MongoDB through ``pymongo.AsyncMongoClient`` (motor is deprecated in its favour).

Every write — one interaction or a whole transaction Bundle — is a multi-document transaction (snapshot read
concern, majority write concern): the ``resources`` document, the ``history`` document and the index values
(which live *in* the resources document) commit together or not at all. Reads outside transactions use
majority read concern so a client never sees a write that a failover could roll back.

Races: the current version is read inside the same snapshot transaction that writes the next one, so of two
requests that both read version 1 and write version 2, MongoDB aborts the second writer with ``WriteConflict``.
:meth:`MongoStore.transaction` cannot re-run its caller's block, so it surfaces that as
:class:`~.errors.TransactionConflict` (412, issue code ``conflict``); :meth:`MongoStore.run_transaction` re-runs a
callable instead (the driver's recommended retry loop): the loser sees version 2 and fails ``If-Match`` on its own,
or, without ``If-Match``, succeeds as version 3.
"""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, TypeVar

import bson
from bson.errors import InvalidDocument
from bson.raw_bson import RawBSONDocument
from pymongo import AsyncMongoClient, ReadPreference, ReplaceOne, UpdateOne, WriteConcern
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.errors import PyMongoError
from pymongo.read_concern import ReadConcern

from fhir_server import metrics
from fhir_server.fhir.search.ast import SearchPage, SearchQuery
from fhir_server.fhir.search.index import IndexRows
from fhir_server.store.base import HistoryPage, HistoryQuery, PreCommit, ResourceVersion, rerun_on_race
from fhir_server.store.mongo import claims
from fhir_server.store.mongo import names as n
from fhir_server.store.mongo.documents import (
    VERSION_FIELDS,
    check_size,
    history_document,
    resource_document,
    version_from_document,
)
from fhir_server.store.mongo.errors import is_transient, translate
from fhir_server.store.mongo.history import HISTORY_SORT, history_filter
from fhir_server.store.mongo.indexes import HISTORY_INDEXES, RESOURCE_INDEXES
from fhir_server.store.mongo.paging import after, cursor_values, decode_cursor, encode_cursor
from fhir_server.store.mongo.search import run_search
from fhir_server.store.mongo.topology import check_topology

if TYPE_CHECKING:
    from fhir_server.store.mongo.export_jobs import MongoExportJobs

Doc = dict[str, Any]
T = TypeVar("T")
DRIVER_ERRORS = (PyMongoError, InvalidDocument, UnicodeEncodeError)
COMMIT_RETRY_SECONDS = 30.0  # how long an UnknownTransactionCommitResult commit is retried
RUN_TRANSACTION_ATTEMPTS = 8  # N racers on one document need up to N rounds: each round has one winner
_HISTORY_FIELDS = {**VERSION_FIELDS, n.METHOD: 1}
_CHUNK = 1000


class MongoTransaction(PreCommit):
    """Reads and writes inside one MongoDB transaction (snapshot: reads see its own writes, nobody else's).

    Writes are buffered and sent as one ``bulk_write``/``insert_many`` per collection (issue #16): a
    100-entry Bundle costs a handful of round trips instead of two or three per resource. The buffer is
    flushed before every read of resources or history in the transaction (so reads still see the
    transaction's own writes) and before the commit; a failed flush fails the transaction like a failed write.
    """

    def __init__(self, store: MongoStore, session: AsyncClientSession) -> None:
        super().__init__()
        self._store = store
        self._session = session
        self._resource_inserts: list[RawBSONDocument] = []  # first versions: nothing to replace
        self._resource_ops: list[ReplaceOne[Any]] = []
        self._history_docs: list[RawBSONDocument] = []
        self._until_ops: list[UpdateOne] = []
        self._pending: list[str] = []  # references of the buffered versions, for error messages

    @property
    def store(self) -> MongoStore:
        return self._store

    @property
    def session(self) -> AsyncClientSession:
        """The transaction's session (store feature modules write with it: subscription events)."""
        return self._session

    async def current(self, resource_type: str, id: str) -> ResourceVersion | None:
        await self.flush()
        try:
            doc = await self._store.resources.find_one(
                {n.ID: n.resource_key(resource_type, id)}, VERSION_FIELDS, session=self._session)
        except DRIVER_ERRORS as e:
            raise translate(e, f"reading {resource_type}/{id}") from e
        return None if doc is None else version_from_document(doc, "PUT")

    async def current_many(self, targets: list[tuple[str, str]]) -> dict[tuple[str, str], ResourceVersion]:
        """The current versions of ``targets`` that exist, in one ``$in`` query per chunk (a Bundle's
        reference checks: one round trip instead of one per target)."""
        await self.flush()
        found: dict[tuple[str, str], ResourceVersion] = {}
        for start in range(0, len(targets), _CHUNK):
            keys = [n.resource_key(t, i) for t, i in targets[start : start + _CHUNK]]
            try:
                docs = await self._store.resources.find({n.ID: {"$in": keys}}, VERSION_FIELDS, batch_size=len(keys),
                                                        session=self._session).to_list(None)  # no getMore
            except DRIVER_ERRORS as e:
                raise translate(e, f"reading {len(keys)} referenced resources") from e
            for doc in docs:
                version = version_from_document(doc, "PUT")
                found[(version.resource_type, version.id)] = version
        return found

    async def put(self, version: ResourceVersion, index: IndexRows | None) -> None:
        check_size(version, self._store.max_bson)
        doc = resource_document(version, index)
        key, pc = doc[n.ID], doc[n.PC]
        try:  # BSON now, not at the flush: see _raw
            resource, history = _raw(doc), _raw(history_document(version, pc))
        except DRIVER_ERRORS as e:
            raise translate(e, f"writing {version.reference}") from e
        if version.version_id == 1:  # a create: an insert (a duplicate _id fails it, as SQLite's UNIQUE does)
            self._resource_inserts.append(resource)
        else:
            self._resource_ops.append(ReplaceOne({n.ID: key}, resource, upsert=True))
        self._history_docs.append(history)
        if version.version_id > 1:
            previous = n.history_key(version.resource_type, version.id, version.version_id - 1)
            self._until_ops.append(UpdateOne({n.ID: previous}, {"$set": {n.UNTIL: version.last_updated}}))
        self._pending.append(version.reference)

    async def flush(self) -> None:
        """Send the buffered writes (in order: first versions, replaced resources, new history documents, then
        the ``_until`` of the versions they follow — which may be among those new documents).

        First versions go out as ``insert_many``, not as upserts: the driver builds no update statement per
        document and the reply lists no upserted ids (issue #16). Inserting them before the replacements keeps
        the final state right when one transaction writes a resource's version 1 and then version 2."""
        if not self._pending:
            return
        inserts, ops, docs, until = self._resource_inserts, self._resource_ops, self._history_docs, self._until_ops
        pending = self._pending
        self._resource_inserts, self._resource_ops, self._history_docs, self._until_ops = [], [], [], []
        self._pending = []
        s = self._session
        try:
            if inserts:
                await self._store.resources.insert_many(inserts, ordered=True, session=s)
            if ops:
                await self._store.resources.bulk_write(ops, ordered=True, session=s)
            await self._store.history_collection.insert_many(docs, ordered=True, session=s)
            if until:
                await self._store.history_collection.bulk_write(until, ordered=True, session=s)
        except DRIVER_ERRORS as e:
            what = pending[0] if len(pending) == 1 else f"{len(pending)} resources ({pending[0]}, …)"
            raise translate(e, f"writing {what}") from e

    async def reindex(self, version: ResourceVersion, index: IndexRows) -> None:
        await self.flush()
        doc = resource_document(version, index)
        try:  # only if still the current version: a newer one was indexed when it was written
            await self._store.resources.replace_one({n.ID: doc[n.ID], n.VID: version.version_id}, doc,
                                                    session=self._session)
        except DRIVER_ERRORS as e:
            raise translate(e, f"reindexing {version.reference}") from e

    async def claim(self, key: str) -> None:
        """Serialise conditional creates on ``key`` (:mod:`.claims`): written at once, not buffered, so a lost
        race fails here, before anything else of the transaction is sent."""
        try:
            await claims.claim(self._store.db[n.CLAIMS], key, self._session)
        except DRIVER_ERRORS as e:
            raise translate(e, "creating under a condition") from e

    async def search(self, query: SearchQuery) -> SearchPage:
        await self.flush()
        try:
            return await run_search(self._store.db, query, self._session)
        except DRIVER_ERRORS as e:
            raise translate(e, f"searching {query.resource_type or 'all types'}") from e


class MongoStore:
    """``MongoStore("mongodb://host1,host2/?replicaSet=rs0", "fhir")``.

    ``allow_standalone`` (default: env ``MONGODB_ALLOW_STANDALONE=1``) accepts a server that reports itself
    as standalone; only useful for test servers that still support transactions (see docs/mongodb.md).
    """

    name = "mongo"
    export_batch = 500

    def __init__(self, uri: str, database: str, *, allow_standalone: bool | None = None,
                 client_options: dict[str, Any] | None = None) -> None:
        self.uri = uri
        self.database = database
        if allow_standalone is None:
            allow_standalone = os.environ.get("MONGODB_ALLOW_STANDALONE", "").lower() in ("1", "true", "yes")
        self.allow_standalone = allow_standalone
        self.max_bson = 16 * 1024 * 1024
        defaults: dict[str, Any] = {"appname": "fhir-server", "serverSelectionTimeoutMS": 10_000}
        given = uri.lower()  # keyword options would override the URI's own: only fill in what it lacks
        self._client_options: dict[str, Any] = {k: v for k, v in defaults.items() if f"{k.lower()}=" not in given}
        self._client_options.update(client_options or {})
        self._client: AsyncMongoClient[Doc] | None = None

    # --- lifecycle ------------------------------------------------------------------------------------------

    async def open(self) -> None:
        client: AsyncMongoClient[Doc] = AsyncMongoClient(self.uri, **self._client_options)
        try:
            hello = await client.admin.command("hello")
            check_topology(hello, self.allow_standalone)
            self.max_bson = int(hello.get("maxBsonObjectSize", self.max_bson))
            db = client.get_database(self.database)
            await db[n.RESOURCES].create_indexes(RESOURCE_INDEXES)
            await db[n.HISTORY].create_indexes(HISTORY_INDEXES)
            await db[n.CLAIMS].create_indexes(claims.CLAIM_INDEXES)
        except PyMongoError as e:
            await client.close()
            raise RuntimeError(f"cannot open the MongoDB store (database {self.database!r}): {e}") from e
        except BaseException:
            await client.close()
            raise
        self._client = client

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None

    @property
    def client(self) -> AsyncMongoClient[Doc]:
        if self._client is None:
            raise RuntimeError("store is not open")
        return self._client

    @property
    def db(self) -> Any:
        """The database with majority read and write concern (Any: pymongo's generics are invariant)."""
        return self.client.get_database(self.database, read_concern=ReadConcern("majority"),
                                        write_concern=WriteConcern("majority"))

    @property
    def resources(self) -> Any:
        return self.db[n.RESOURCES]

    @property
    def history_collection(self) -> Any:
        return self.db[n.HISTORY]

    # --- transactions ---------------------------------------------------------------------------------------

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[MongoTransaction]:
        async with self.client.start_session() as session:
            try:
                await session.start_transaction(
                    read_concern=ReadConcern("snapshot"), write_concern=WriteConcern("majority"),
                    read_preference=ReadPreference.PRIMARY)
            except DRIVER_ERRORS as e:
                raise translate(e, "starting a transaction") from e
            started = time.perf_counter()
            try:
                tx = MongoTransaction(self, session)
                yield tx
                await tx.run_before_commit()  # may buffer more writes: before the flush
                await tx.flush()
            except BaseException:
                if session.in_transaction:
                    await session.abort_transaction()  # the driver swallows server errors on abort
                metrics.STORE_TRANSACTION_SECONDS.labels("mongo", "rollback").observe(time.perf_counter() - started)
                raise
            await _commit(session)
            metrics.STORE_TRANSACTION_SECONDS.labels("mongo", "commit").observe(time.perf_counter() - started)

    async def run_transaction(self, fn: Callable[[MongoTransaction], Awaitable[T]]) -> T:
        """Run ``fn(tx)`` in a transaction, re-running all of it when a concurrent writer won the race.

        ``fn`` must be safe to repeat (it reads what it needs through ``tx``). After the last attempt the
        :class:`TransactionConflict` propagates.
        """
        async def once() -> T:
            async with self.transaction() as tx:
                return await fn(tx)

        return await rerun_on_race(once, RUN_TRANSACTION_ATTEMPTS)

    # --- reads ----------------------------------------------------------------------------------------------

    def export_jobs(self) -> MongoExportJobs:
        """Bulk export jobs and their files (:mod:`.export_jobs`)."""
        from fhir_server.store.mongo.export_jobs import MongoExportJobs

        return MongoExportJobs(self)

    async def read(self, resource_type: str, id: str) -> ResourceVersion | None:
        try:
            doc = await self.resources.find_one({n.ID: n.resource_key(resource_type, id)}, VERSION_FIELDS)
        except DRIVER_ERRORS as e:
            raise translate(e, f"reading {resource_type}/{id}") from e
        return None if doc is None else version_from_document(doc, "PUT")

    async def vread(self, resource_type: str, id: str, version_id: int) -> ResourceVersion | None:
        try:
            doc = await self.history_collection.find_one(
                {n.ID: n.history_key(resource_type, id, version_id)}, _HISTORY_FIELDS)
        except DRIVER_ERRORS as e:
            raise translate(e, f"reading {resource_type}/{id}/_history/{version_id}") from e
        return None if doc is None else version_from_document(doc)

    async def history(self, query: HistoryQuery) -> HistoryPage:
        filt = history_filter(query)
        page = filt
        if query.cursor:
            page = {"$and": [filt, after(HISTORY_SORT, decode_cursor(query.cursor, HISTORY_SORT))]}
        coll = self.history_collection
        try:
            total = await coll.count_documents(filt) if query.want_total else None
            docs = await coll.find(page, _HISTORY_FIELDS, sort=HISTORY_SORT, limit=query.count + 1).to_list(None)
        except DRIVER_ERRORS as e:
            raise translate(e, "reading history") from e
        more = len(docs) > query.count
        docs = docs[: query.count]
        cursor = encode_cursor(cursor_values(docs[-1], HISTORY_SORT)) if more and docs else None
        return HistoryPage([version_from_document(d) for d in docs], cursor, total)

    async def search(self, query: SearchQuery) -> SearchPage:
        try:
            return await run_search(self.db, query)
        except DRIVER_ERRORS as e:
            raise translate(e, f"searching {query.resource_type or 'all types'}") from e

    async def read_many(self, references: list[tuple[str, str]]) -> list[ResourceVersion]:
        keys = list(dict.fromkeys(n.resource_key(t, i) for t, i in references))
        found: list[ResourceVersion] = []
        try:
            for start in range(0, len(keys), _CHUNK):
                cursor = self.resources.find({n.ID: {"$in": keys[start : start + _CHUNK]}, n.DELETED: False},
                                             VERSION_FIELDS)
                found += [version_from_document(d, "PUT") async for d in cursor]
        except DRIVER_ERRORS as e:
            raise translate(e, "reading referenced resources") from e
        return found

    async def export(self, resource_type: str | None = None) -> AsyncIterator[ResourceVersion]:
        """Pages by ``_id`` (keyset): no server cursor stays open while the consumer writes NDJSON."""
        last = ""
        while True:
            filt: Doc = {n.ID: {"$gt": last}, n.DELETED: False}
            if resource_type:
                filt[n.TYPE] = resource_type
            try:
                cursor = self.resources.find(filt, VERSION_FIELDS, sort=[(n.ID, 1)], limit=self.export_batch)
                docs = await cursor.to_list(None)
            except DRIVER_ERRORS as e:
                raise translate(e, "exporting resources") from e
            if not docs:
                return
            for d in docs:
                yield version_from_document(d, "PUT")
            last = docs[-1][n.ID]


def _raw(doc: Doc) -> RawBSONDocument:
    """``doc`` encoded as BSON now, for a write that waits in the transaction's buffer.

    The driver would encode it at the flush anyway (the same C encoder, the same bytes are sent); encoding at
    :meth:`MongoTransaction.put` lets the ~30 dicts and lists of each document (its index entries) die young.
    Buffered as Python objects they survived the young collections of a whole Bundle and were promoted, and
    the old-generation collections they triggered scanned every object of the process (~150,000, the R4
    definitions) — about a quarter of the MongoDB path's CPU per Consent (issue #16).
    """
    return RawBSONDocument(bson.encode(doc))


async def _commit(session: AsyncClientSession) -> None:
    """Commit, retrying only an *unknown* outcome (the driver docs' pattern; commit is idempotent)."""
    deadline = time.monotonic() + COMMIT_RETRY_SECONDS
    while True:
        try:
            await session.commit_transaction()
            return
        except DRIVER_ERRORS as e:
            unknown = isinstance(e, PyMongoError) and e.has_error_label("UnknownTransactionCommitResult")
            if unknown and not is_transient(e) and time.monotonic() < deadline:
                continue
            raise translate(e, "committing the transaction") from e
