"""Subscription state, matching keys and the event outbox in MongoDB (see :mod:`fhir_server.store.subscriptions`).

``sub_state`` holds one document per subscription (its matching ``keys`` as a multikey-indexed array);
``sub_event`` one document per numbered event with a unique index on (subscription, number).

A write appends its events to ``sub_pending`` with the write's session, inside its multi-document transaction,
and touches nothing else: numbering there (``$inc`` on the subscription's document) would make every two
concurrent writes that match the same subscription conflict. It inserts one document per written version, listing
the subscriptions it matched (``subs``, multikey-indexed with the write order), so a write matching ten
subscriptions costs one document, not ten. Numbers are given by the worker holding the subscription's lease,
after the consent gate (:meth:`MongoSubscriptions.number`): one transaction checks the lease and increments the
counter on the subscription's document, inserts the numbered events and takes the subscription out of the
pending documents' ``subs`` (``$pull``; a document no subscription waits for any more is deleted); two workers
doing it at once conflict and the loser's transaction is run again, and the unique (subscription, number) index
makes a double number impossible. Leases are single-document
``find_one_and_update`` calls, atomic without a transaction.
"""

from __future__ import annotations

from typing import Any
from uuid import uuid4

from pymongo import ASCENDING, IndexModel, ReturnDocument

from fhir_server.store.base import Transaction
from fhir_server.store.mongo.errors import translate
from fhir_server.store.mongo.store import DRIVER_ERRORS, MongoStore, MongoTransaction
from fhir_server.store.subscriptions import Candidate, EventRow, Pending, SubscriptionState, filters_text

STATES = "sub_state"
EVENTS = "sub_event"
PENDING = "sub_pending"
_WRITE_ORDER = [("at", ASCENDING), ("rtype", ASCENDING), ("rid", ASCENDING), ("vid", ASCENDING)]
_OLD_PENDING_INDEX = "sub_at"  # one document per (subscription, write), before the documents listed ``subs``
_STATE_FIELDS = set(SubscriptionState.__slots__)  # type: ignore[attr-defined]
_STATE_FIELDS.discard("match")
_CHANGEABLE = _STATE_FIELDS - {"id", "kind", "channel", "owner", "spec", "last_number", "keys"}


def _state(doc: dict[str, Any]) -> SubscriptionState:
    values = {k: v for k, v in doc.items() if k in _STATE_FIELDS}
    values["id"] = doc["_id"]
    return SubscriptionState(**values)


def _event(doc: dict[str, Any]) -> EventRow:
    return EventRow(doc["sub"], doc["n"], doc["rtype"], doc["rid"], doc["vid"], doc["interaction"], doc["at"])


_ANY_LIVE = "mongo.subscriptions.any_live"  # tx.notes key: is any subscription not off?

def _session(tx: Transaction) -> Any:
    assert isinstance(tx, MongoTransaction)
    return tx.session


class _Lost(Exception):
    """Another worker numbered the pending events first."""


def _due(now: float, with_pending: list[str]) -> dict[str, Any]:
    return {"status": {"$ne": "off"}, "lease_until": {"$lt": now}, "retry_at": {"$lte": now}, "$or": [
        {"status": "active", "$expr": {"$gt": ["$last_number", "$delivered"]}},
        {"status": "requested", "kind": "topic", "channel": "rest-hook"},
        {"heartbeat_at": {"$ne": None, "$lte": now}},
        {"_id": {"$in": with_pending}},
    ]}


class MongoSubscriptions:
    def __init__(self, store: MongoStore) -> None:
        self.store = store

    @property
    def states(self) -> Any:
        return self.store.db[STATES]

    @property
    def event_collection(self) -> Any:
        return self.store.db[EVENTS]

    @property
    def pending_collection(self) -> Any:
        return self.store.db[PENDING]

    async def open(self) -> None:
        try:
            await self._migrate()
            await self.pending_collection.create_indexes(
                [IndexModel([("subs", ASCENDING), *_WRITE_ORDER], name="subs_order")])
            # The index becomes multikey with its first array; that catalog change made the first concurrent
            # writes conflict with one another (409 on SecantusDB), so it happens here, before any write
            marker = {"_id": f"multikey-{uuid4()}", "subs": []}
            await self.pending_collection.insert_one(marker)
            await self.pending_collection.delete_one({"_id": marker["_id"]})
            await self.states.create_indexes([IndexModel([("keys", ASCENDING)], name="keys"),
                                              IndexModel([("ws_token", ASCENDING)], name="ws_token"),
                                              IndexModel([("lease_until", ASCENDING)], name="lease_until")])
            await self.event_collection.create_indexes(
                [IndexModel([("sub", ASCENDING), ("n", ASCENDING)], name="sub_number", unique=True)])
        except DRIVER_ERRORS as e:
            raise translate(e, "creating the subscription indexes") from e

    async def _migrate(self) -> None:
        """Pending documents of the earlier layout (one per subscription and write, ``sub``) get ``subs``."""
        async for doc in self.pending_collection.find({"sub": {"$exists": True}}, {"sub": 1}):
            await self.pending_collection.update_one({"_id": doc["_id"]},
                                                     {"$set": {"subs": [doc["sub"]]}, "$unset": {"sub": ""}})
        if _OLD_PENDING_INDEX in await self.pending_collection.index_information():
            await self.pending_collection.drop_index(_OLD_PENDING_INDEX)

    async def candidates(self, tx: Transaction, keys: list[str]) -> list[Candidate]:
        # Whether any subscription is live is read once per transaction (issue #16: one `find` per write was
        # most of a Bundle's round trips). Exact: the transaction reads one snapshot, so every later query in it
        # would see the same subscriptions; a registration in this transaction clears the note.
        notes = tx.notes
        live = notes.get(_ANY_LIVE)
        if live is None:
            try:
                live = notes[_ANY_LIVE] = await self.states.find_one(
                    {"status": {"$ne": "off"}}, {"_id": 1}, session=_session(tx)) is not None
            except DRIVER_ERRORS as e:
                raise translate(e, "matching subscriptions") from e
        if not live:
            return []
        try:
            docs = await self.states.find({"keys": {"$in": keys}, "status": {"$ne": "off"}}, {"match": 1},
                                          session=_session(tx)).to_list(None)
        except DRIVER_ERRORS as e:
            raise translate(e, "matching subscriptions") from e
        return [Candidate(d["_id"], d.get("match", "")) for d in docs]

    async def append(self, tx: Transaction, batch: list[tuple[list[str], EventRow]]) -> None:
        docs = [{"subs": ids, "rtype": event.resource_type, "rid": event.id, "vid": event.version_id,
                 "interaction": event.interaction, "at": event.at} for ids, event in batch]
        try:
            await self.pending_collection.insert_many(docs, session=_session(tx))
        except DRIVER_ERRORS as e:
            raise translate(e, "recording subscription events") from e

    async def pending(self, id: str, limit: int) -> list[Pending]:
        try:
            docs = await self.pending_collection.find({"subs": id}, {"subs": 0}, sort=_WRITE_ORDER,
                                                      limit=limit).to_list(None)
        except DRIVER_ERRORS as e:
            raise translate(e, f"reading pending events of Subscription/{id}") from e
        return [Pending(d["_id"], EventRow(id, 0, d["rtype"], d["rid"], d["vid"], d["interaction"], d["at"]))
                for d in docs]

    async def number(self, id: str, worker: str, accepted: list[Any], consumed: list[Any], until: float
                     ) -> int | None:
        async def give(tx: Transaction) -> int | None:
            s = _session(tx)
            try:
                docs = {d["_id"]: d for d in await self.pending_collection.find(
                    {"_id": {"$in": accepted}, "subs": id}, {"subs": 0}, session=s).to_list(None)}
                state = await self.states.find_one_and_update(
                    {"_id": id, "lease_owner": worker},
                    {"$inc": {"last_number": len(accepted)}, "$set": {"lease_until": until}},
                    projection={"last_number": 1}, return_document=ReturnDocument.AFTER, session=s)
                if state is None:
                    return None
                gone = (await self.pending_collection.update_many(
                    {"_id": {"$in": consumed}, "subs": id}, {"$pull": {"subs": id}}, session=s)).modified_count
                if gone != len(consumed) or len(docs) != len(accepted):
                    raise _Lost  # numbered meanwhile: the transaction is undone
                await self.pending_collection.delete_many({"_id": {"$in": consumed}, "subs": {"$size": 0}},
                                                          session=s)
                first = state["last_number"] - len(accepted) + 1
                if accepted:
                    await self.event_collection.insert_many(
                        [{k: v for k, v in docs[token].items() if k != "_id"} | {"sub": id, "n": first + i}
                         for i, token in enumerate(accepted)], session=s)
            except DRIVER_ERRORS as e:
                raise translate(e, f"numbering events of Subscription/{id}") from e
            return int(state["last_number"])

        try:
            return await self.store.run_transaction(give)
        except _Lost:
            return None

    async def register(self, tx: Transaction, state: SubscriptionState) -> None:
        definition = {"kind": state.kind, "channel": state.channel, "status": state.status, "owner": state.owner,
                      "spec": state.spec, "match": filters_text(state.spec), "keys": state.keys,
                      "attempts": state.attempts, "retry_at": state.retry_at, "error": state.error,
                      "heartbeat_at": state.heartbeat_at}
        fresh = {"last_number": 0, "delivered": 0, "last_sent": 0.0, "lease_owner": None, "lease_until": 0.0,
                 "ws_token": None, "ws_token_expires": 0.0}
        tx.notes.pop(_ANY_LIVE, None)
        try:
            await self.states.update_one({"_id": state.id}, {"$set": definition, "$setOnInsert": fresh},
                                         upsert=True, session=_session(tx))
        except DRIVER_ERRORS as e:
            raise translate(e, f"registering Subscription/{state.id}") from e

    async def unregister(self, tx: Transaction, id: str) -> None:
        s = _session(tx)
        try:
            await self.states.delete_one({"_id": id}, session=s)
            await self.event_collection.delete_many({"sub": id}, session=s)
            await self.pending_collection.update_many({"subs": id}, {"$pull": {"subs": id}}, session=s)
            await self.pending_collection.delete_many({"subs": {"$size": 0}}, session=s)
        except DRIVER_ERRORS as e:
            raise translate(e, f"unregistering Subscription/{id}") from e

    async def get(self, id: str) -> SubscriptionState | None:
        try:
            doc = await self.states.find_one({"_id": id})
        except DRIVER_ERRORS as e:
            raise translate(e, f"reading Subscription/{id} state") from e
        return None if doc is None else _state(doc)

    async def claim(self, worker: str, now: float, lease_seconds: float, limit: int, exclude: list[str],
                    websocket_ids: list[str]) -> list[SubscriptionState]:
        try:
            found = await self.pending_collection.find({}, {"subs": 1}, limit=5000).to_list(None)
        except DRIVER_ERRORS as e:
            raise translate(e, "reading pending subscription events") from e
        filt = _due(now, list(dict.fromkeys(sub for d in found for sub in d["subs"])))
        filt["_id"] = {"$nin": exclude}
        filt["$and"] = [{"$or": [{"channel": {"$ne": "websocket"}}, {"_id": {"$in": websocket_ids}}]}]
        claimed: list[SubscriptionState] = []
        try:
            for _ in range(limit):
                doc = await self.states.find_one_and_update(
                    filt, {"$set": {"lease_owner": worker, "lease_until": now + lease_seconds}},
                    return_document=ReturnDocument.AFTER)
                if doc is None:
                    break
                claimed.append(_state(doc))
                filt["_id"] = {"$nin": [*exclude, *(c.id for c in claimed)]}
        except DRIVER_ERRORS as e:
            raise translate(e, "claiming subscriptions") from e
        return claimed

    async def renew(self, id: str, worker: str, until: float) -> bool:
        try:
            result = await self.states.update_one({"_id": id, "lease_owner": worker},
                                                  {"$set": {"lease_until": until}})
        except DRIVER_ERRORS as e:
            raise translate(e, f"renewing the lease of Subscription/{id}") from e
        return bool(result.matched_count == 1)

    async def finish(self, id: str, worker: str, changes: dict[str, Any]) -> bool:
        unknown = set(changes) - _CHANGEABLE
        if unknown:
            raise ValueError(f"cannot change {sorted(unknown)}")
        try:
            result = await self.states.update_one(
                {"_id": id, "lease_owner": worker},
                {"$set": {**changes, "lease_owner": None, "lease_until": 0.0}})
        except DRIVER_ERRORS as e:
            raise translate(e, f"updating Subscription/{id} state") from e
        return bool(result.matched_count == 1)

    async def events(self, id: str, first: int, last: int, limit: int) -> list[EventRow]:
        try:
            docs = await self.event_collection.find({"sub": id, "n": {"$gte": first, "$lte": last}},
                                                    sort=[("n", ASCENDING)], limit=limit).to_list(None)
        except DRIVER_ERRORS as e:
            raise translate(e, f"reading events of Subscription/{id}") from e
        return [_event(d) for d in docs]

    async def prune(self, id: str, below: int, before: str) -> None:
        try:
            await self.event_collection.delete_many({"sub": id, "n": {"$lt": below}, "at": {"$lt": before}})
        except DRIVER_ERRORS as e:
            raise translate(e, f"pruning events of Subscription/{id}") from e

    async def set_token(self, ids: list[str], token: str, expires: float) -> None:
        try:
            await self.states.update_many({"_id": {"$in": ids}},
                                          {"$set": {"ws_token": token, "ws_token_expires": expires}})
        except DRIVER_ERRORS as e:
            raise translate(e, "storing a websocket binding token") from e

    async def by_token(self, token: str) -> list[SubscriptionState]:
        try:
            docs = await self.states.find({"ws_token": token}).to_list(None)
        except DRIVER_ERRORS as e:
            raise translate(e, "reading a websocket binding token") from e
        return [_state(d) for d in docs]
