"""The security store on MongoDB (see :mod:`fhir_server.store.security`): small collections beside the resources.

A replayed ``jti`` is a duplicate ``_id`` on insert — atomic across every worker and replica. Used ids and
failures carry a TTL index (``expires``), so MongoDB removes them itself once they can no longer matter; the
reads below also ignore expired documents, since the TTL monitor runs only once a minute.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from pymongo import ASCENDING, IndexModel
from pymongo.errors import DuplicateKeyError, PyMongoError

from fhir_server.store.mongo.errors import translate
from fhir_server.store.mongo.store import MongoStore

CLIENTS = "auth_clients"
JTIS = "auth_jti"
FAILURES = "auth_failures"
SECRETS = "auth_secrets"
USERS = "auth_users"
CODES = "auth_codes"
FAILURE_KEEP = 3600.0


def _when(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


class MongoSecurity:
    def __init__(self, store: MongoStore) -> None:
        self.store = store
        self._ready = False

    async def _db(self) -> Any:
        db = self.store.db
        if not self._ready:
            try:
                await db[JTIS].create_indexes([IndexModel([("expires", ASCENDING)], expireAfterSeconds=0)])
                await db[FAILURES].create_indexes([
                    IndexModel([("client_id", ASCENDING), ("at", ASCENDING)]),
                    IndexModel([("expires", ASCENDING)], expireAfterSeconds=0),
                ])
                await db[CODES].create_indexes([IndexModel([("expires", ASCENDING)], expireAfterSeconds=0)])
            except PyMongoError as e:
                raise translate(e, "preparing the security collections") from e
            self._ready = True
        return db

    async def add_client(self, doc: dict[str, Any]) -> None:
        db = await self._db()
        try:
            await db[CLIENTS].insert_one({"_id": doc["client_id"], "doc": dict(doc)})
        except PyMongoError as e:
            raise translate(e, "registering a client") from e

    async def get_client(self, client_id: str) -> dict[str, Any] | None:
        db = await self._db()
        try:
            found = await db[CLIENTS].find_one({"_id": client_id})
        except PyMongoError as e:
            raise translate(e, "reading a client") from e
        return None if found is None else dict(found["doc"])

    async def list_clients(self) -> list[dict[str, Any]]:
        db = await self._db()
        try:
            docs = await db[CLIENTS].find({}, sort=[("_id", ASCENDING)]).to_list(None)
        except PyMongoError as e:
            raise translate(e, "listing clients") from e
        return [dict(d["doc"]) for d in docs]

    async def set_client_active(self, client_id: str, active: bool) -> bool:
        db = await self._db()
        try:
            result = await db[CLIENTS].update_one({"_id": client_id}, {"$set": {"doc.active": active}})
        except PyMongoError as e:
            raise translate(e, "changing a client") from e
        return bool(result.matched_count)

    async def use_jti(self, key: str, expires_at: float) -> bool:
        db = await self._db()
        try:
            await db[JTIS].insert_one({"_id": key, "expires": _when(expires_at)})
        except DuplicateKeyError:
            return False
        except PyMongoError as e:
            raise translate(e, "recording an assertion id") from e
        return True

    async def add_failure(self, client_id: str, at: float) -> None:
        db = await self._db()
        try:
            await db[FAILURES].insert_one({"client_id": client_id, "at": at, "expires": _when(at + FAILURE_KEEP)})
        except PyMongoError as e:
            raise translate(e, "recording a failure") from e

    async def failures_since(self, client_id: str, since: float) -> list[float]:
        db = await self._db()
        try:
            docs = await db[FAILURES].find({"client_id": client_id, "at": {"$gte": since}}, {"at": 1},
                                           sort=[("at", ASCENDING)]).to_list(None)
        except PyMongoError as e:
            raise translate(e, "reading failures") from e
        return [float(d["at"]) for d in docs]

    async def secret(self, name: str, make: Callable[[], bytes]) -> bytes:
        db = await self._db()
        try:
            await db[SECRETS].update_one({"_id": name}, {"$setOnInsert": {"value": make()}}, upsert=True)
            found = await db[SECRETS].find_one({"_id": name})
        except DuplicateKeyError:  # two workers upserted at once: the other one's value stands
            found = await db[SECRETS].find_one({"_id": name})
        except PyMongoError as e:
            raise translate(e, "reading the token key") from e
        assert found is not None
        return bytes(found["value"])

    async def jti_recorded(self, key: str, now: float) -> bool:
        db = await self._db()
        try:
            found = await db[JTIS].find_one({"_id": key, "expires": {"$gte": _when(now)}}, {"_id": 1})
        except PyMongoError as e:
            raise translate(e, "reading a revoked token") from e
        return found is not None

    async def add_user(self, doc: dict[str, Any]) -> bool:
        db = await self._db()
        try:
            await db[USERS].insert_one({"_id": doc["username"], "doc": dict(doc)})
        except DuplicateKeyError:
            return False
        except PyMongoError as e:
            raise translate(e, "adding a user") from e
        return True

    async def get_user(self, username: str) -> dict[str, Any] | None:
        db = await self._db()
        try:
            found = await db[USERS].find_one({"_id": username})
        except PyMongoError as e:
            raise translate(e, "reading a user") from e
        return None if found is None else dict(found["doc"])

    async def list_users(self) -> list[dict[str, Any]]:
        db = await self._db()
        try:
            docs = await db[USERS].find({}, sort=[("_id", ASCENDING)]).to_list(None)
        except PyMongoError as e:
            raise translate(e, "listing users") from e
        return [dict(d["doc"]) for d in docs]

    async def replace_user(self, doc: dict[str, Any]) -> bool:
        db = await self._db()
        try:
            result = await db[USERS].update_one({"_id": doc["username"]}, {"$set": {"doc": dict(doc)}})
        except PyMongoError as e:
            raise translate(e, "changing a user") from e
        return bool(result.matched_count)

    async def put_code(self, key: str, doc: dict[str, Any], expires_at: float) -> None:
        db = await self._db()
        try:
            await db[CODES].insert_one({"_id": key, "doc": dict(doc), "at": expires_at,
                                        "expires": _when(expires_at)})
        except PyMongoError as e:
            raise translate(e, "keeping an authorization code") from e

    async def redeem_code(self, key: str, now: float) -> dict[str, Any] | None:
        db = await self._db()
        try:  # atomic: of two workers redeeming one code, one sees it not yet redeemed
            before = await db[CODES].find_one_and_update({"_id": key}, {"$set": {"doc.redeemed": True}})
        except PyMongoError as e:
            raise translate(e, "redeeming an authorization code") from e
        if before is None or float(before["at"]) < now:
            return None
        return dict(before["doc"])
