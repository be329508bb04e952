"""The security store on SQLite (see :mod:`fhir_server.store.security`): small tables beside the resources.

Writes go through the store's writer transaction (one writer, as for resources); reads use its reader
connection. A replayed ``jti`` is found by its primary key, so the check is one index probe.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable
from typing import Any

from fhir_server.store.sqlite.store import SQLiteStore

DDL = (
    "CREATE TABLE IF NOT EXISTS auth_client (client_id TEXT PRIMARY KEY, doc TEXT NOT NULL) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS auth_jti (key TEXT PRIMARY KEY, expires_at REAL NOT NULL) WITHOUT ROWID",
    "CREATE INDEX IF NOT EXISTS auth_jti_expires ON auth_jti (expires_at)",
    "CREATE TABLE IF NOT EXISTS auth_failure (client_id TEXT NOT NULL, at REAL NOT NULL)",
    "CREATE INDEX IF NOT EXISTS auth_failure_client ON auth_failure (client_id, at)",
    "CREATE INDEX IF NOT EXISTS auth_failure_at ON auth_failure (at)",
    "CREATE TABLE IF NOT EXISTS auth_secret (name TEXT PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS auth_user (username TEXT PRIMARY KEY, doc TEXT NOT NULL) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS auth_code (key TEXT PRIMARY KEY, doc TEXT NOT NULL, expires_at REAL NOT NULL)"
    " WITHOUT ROWID",
    "CREATE INDEX IF NOT EXISTS auth_code_expires ON auth_code (expires_at)",
)
FAILURE_WINDOW = 3600.0  # failures older than this are deleted when new ones are written


class SQLiteSecurity:
    def __init__(self, store: SQLiteStore) -> None:
        self.store = store
        self._ready = False

    async def _ensure(self) -> None:
        if not self._ready:
            async with self.store.transaction() as tx:
                for statement in DDL:
                    tx.connection.execute(statement)
            self._ready = True

    async def _reader(self) -> sqlite3.Connection:
        await self._ensure()
        return self.store.reader

    async def add_client(self, doc: dict[str, Any]) -> None:
        await self._ensure()
        async with self.store.transaction() as tx:
            tx.connection.execute("INSERT INTO auth_client (client_id, doc) VALUES (?, ?)",
                                  (doc["client_id"], json.dumps(doc)))

    async def get_client(self, client_id: str) -> dict[str, Any] | None:
        row = (await self._reader()).execute("SELECT doc FROM auth_client WHERE client_id = ?",
                                             (client_id,)).fetchone()
        return None if row is None else json.loads(row[0])  # type: ignore[no-any-return]

    async def list_clients(self) -> list[dict[str, Any]]:
        rows = (await self._reader()).execute("SELECT doc FROM auth_client ORDER BY client_id").fetchall()
        return [json.loads(r[0]) for r in rows]

    async def set_client_active(self, client_id: str, active: bool) -> bool:
        await self._ensure()
        async with self.store.transaction() as tx:
            row = tx.connection.execute("SELECT doc FROM auth_client WHERE client_id = ?", (client_id,)).fetchone()
            if row is None:
                return False
            doc = {**json.loads(row[0]), "active": active}
            tx.connection.execute("UPDATE auth_client SET doc = ? WHERE client_id = ?", (json.dumps(doc), client_id))
        return True

    async def use_jti(self, key: str, expires_at: float) -> bool:
        await self._ensure()
        async with self.store.transaction() as tx:
            tx.connection.execute("DELETE FROM auth_jti WHERE expires_at < ?", (time.time(),))
            try:
                tx.connection.execute("INSERT INTO auth_jti (key, expires_at) VALUES (?, ?)", (key, expires_at))
            except sqlite3.IntegrityError:
                return False
        return True

    async def add_failure(self, client_id: str, at: float) -> None:
        await self._ensure()
        async with self.store.transaction() as tx:
            tx.connection.execute("DELETE FROM auth_failure WHERE at < ?", (at - FAILURE_WINDOW,))
            tx.connection.execute("INSERT INTO auth_failure (client_id, at) VALUES (?, ?)", (client_id, at))

    async def failures_since(self, client_id: str, since: float) -> list[float]:
        rows = (await self._reader()).execute(
            "SELECT at FROM auth_failure WHERE client_id = ? AND at >= ? ORDER BY at", (client_id, since)
        ).fetchall()
        return [float(r[0]) for r in rows]

    async def secret(self, name: str, make: Callable[[], bytes]) -> bytes:
        await self._ensure()
        async with self.store.transaction() as tx:
            tx.connection.execute("INSERT OR IGNORE INTO auth_secret (name, value) VALUES (?, ?)", (name, make()))
            row = tx.connection.execute("SELECT value FROM auth_secret WHERE name = ?", (name,)).fetchone()
        return bytes(row[0])

    async def jti_recorded(self, key: str, now: float) -> bool:
        row = (await self._reader()).execute("SELECT expires_at FROM auth_jti WHERE key = ?", (key,)).fetchone()
        return row is not None and float(row[0]) >= now

    async def add_user(self, doc: dict[str, Any]) -> bool:
        await self._ensure()
        async with self.store.transaction() as tx:
            try:
                tx.connection.execute("INSERT INTO auth_user (username, doc) VALUES (?, ?)",
                                      (doc["username"], json.dumps(doc)))
            except sqlite3.IntegrityError:
                return False
        return True

    async def get_user(self, username: str) -> dict[str, Any] | None:
        row = (await self._reader()).execute("SELECT doc FROM auth_user WHERE username = ?", (username,)).fetchone()
        return None if row is None else json.loads(row[0])  # type: ignore[no-any-return]

    async def list_users(self) -> list[dict[str, Any]]:
        rows = (await self._reader()).execute("SELECT doc FROM auth_user ORDER BY username").fetchall()
        return [json.loads(r[0]) for r in rows]

    async def replace_user(self, doc: dict[str, Any]) -> bool:
        await self._ensure()
        async with self.store.transaction() as tx:
            cur = tx.connection.execute("UPDATE auth_user SET doc = ? WHERE username = ?",
                                        (json.dumps(doc), doc["username"]))
            return cur.rowcount > 0

    async def put_code(self, key: str, doc: dict[str, Any], expires_at: float) -> None:
        await self._ensure()
        async with self.store.transaction() as tx:
            tx.connection.execute("DELETE FROM auth_code WHERE expires_at < ?", (time.time(),))
            tx.connection.execute("INSERT INTO auth_code (key, doc, expires_at) VALUES (?, ?, ?)",
                                  (key, json.dumps(doc), expires_at))

    async def redeem_code(self, key: str, now: float) -> dict[str, Any] | None:
        await self._ensure()
        async with self.store.transaction() as tx:  # the one writer: select + update cannot interleave
            row = tx.connection.execute("SELECT doc, expires_at FROM auth_code WHERE key = ?", (key,)).fetchone()
            if row is None or float(row[1]) < now:
                return None
            doc: dict[str, Any] = json.loads(row[0])
            if not doc.get("redeemed"):
                tx.connection.execute("UPDATE auth_code SET doc = ? WHERE key = ?",
                                      (json.dumps({**doc, "redeemed": True}), key))
        return doc
