"""Subscription state, matching keys and the event outbox in SQLite (see :mod:`fhir_server.store.subscriptions`).

Events are appended on the writer connection inside the write's own ``BEGIN IMMEDIATE`` transaction, so a
committed write always has its events. Numbers come from ``sub_state.last_number`` (``UPDATE … RETURNING``);
``PRIMARY KEY (sub_id, number)`` makes a duplicate number impossible. Leases are small write transactions of
their own through the store's writer lock; nothing is held across an HTTP request.
"""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING, Any

import orjson

from fhir_server.store.base import Transaction
from fhir_server.store.subscriptions import Candidate, EventRow, SubscriptionState

if TYPE_CHECKING:
    from fhir_server.store.sqlite.store import SQLiteStore

DDL = """
CREATE TABLE IF NOT EXISTS sub_state (
    id               TEXT PRIMARY KEY,
    kind             TEXT NOT NULL,
    channel          TEXT NOT NULL,
    status           TEXT NOT NULL,
    owner            TEXT NOT NULL,
    spec             TEXT NOT NULL,
    last_number      INTEGER NOT NULL DEFAULT 0,
    delivered        INTEGER NOT NULL DEFAULT 0,
    attempts         INTEGER NOT NULL DEFAULT 0,
    retry_at         REAL NOT NULL DEFAULT 0,
    error            TEXT,
    heartbeat_at     REAL,
    last_sent        REAL NOT NULL DEFAULT 0,
    lease_owner      TEXT,
    lease_until      REAL NOT NULL DEFAULT 0,
    ws_token         TEXT,
    ws_token_expires REAL NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS sub_state_token ON sub_state (ws_token);
CREATE TABLE IF NOT EXISTS sub_key (
    key    TEXT NOT NULL,
    sub_id TEXT NOT NULL,
    PRIMARY KEY (key, sub_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS sub_key_sub ON sub_key (sub_id);
CREATE TABLE IF NOT EXISTS sub_event (
    sub_id      TEXT NOT NULL,
    number      INTEGER NOT NULL,
    rtype       TEXT NOT NULL,
    id          TEXT NOT NULL,
    vid         INTEGER NOT NULL,
    interaction TEXT NOT NULL,
    at          TEXT NOT NULL,
    PRIMARY KEY (sub_id, number)
) WITHOUT ROWID;
"""

_STATE_COLUMNS = ("id", "kind", "channel", "status", "owner", "spec", "last_number", "delivered", "attempts",
                  "retry_at", "error", "heartbeat_at", "last_sent", "lease_owner", "lease_until", "ws_token",
                  "ws_token_expires")
_SELECT = ", ".join(_STATE_COLUMNS)
_CHANGEABLE = frozenset(_STATE_COLUMNS) - {"id", "kind", "channel", "owner", "spec", "last_number"}
_DUE = ("status != 'off' AND lease_until < :now AND retry_at <= :now AND ("
        " (status = 'active' AND last_number > delivered)"
        " OR (status = 'requested' AND kind = 'topic' AND channel = 'rest-hook')"
        " OR (heartbeat_at IS NOT NULL AND heartbeat_at <= :now))")


def _state(row: sqlite3.Row | tuple[Any, ...]) -> SubscriptionState:
    values = dict(zip(_STATE_COLUMNS, row, strict=True))
    values["owner"] = orjson.loads(values["owner"])
    values["spec"] = orjson.loads(values["spec"])
    values["keys"] = []
    return SubscriptionState(**values)


def _conn(tx: Transaction) -> sqlite3.Connection:
    return tx.connection  # type: ignore[attr-defined,no-any-return]


class SQLiteSubscriptions:
    """The tables are created with the store's own (``SQLiteStore.open``), so a write on any SQLite store can
    look for subscriptions; operations inside a write use only the transaction's connection."""

    def __init__(self, store: SQLiteStore) -> None:
        self.store = store

    async def open(self) -> None:
        """Nothing to do: ``DDL`` runs when the store opens."""

    async def candidates(self, tx: Transaction, keys: list[str]) -> list[Candidate]:
        conn = _conn(tx)
        found: dict[str, Candidate] = {}
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            rows = conn.execute(
                "SELECT s.id, s.spec FROM sub_key k JOIN sub_state s ON s.id = k.sub_id"
                f" WHERE k.key IN ({','.join('?' * len(chunk))}) AND s.status != 'off'", chunk).fetchall()
            for id_, spec in rows:
                if id_ not in found:
                    found[id_] = Candidate(id_, orjson.loads(spec))
        return list(found.values())

    async def append(self, tx: Transaction, subscription_ids: list[str], event: EventRow) -> None:
        conn = _conn(tx)
        for sub_id in subscription_ids:
            row = conn.execute("UPDATE sub_state SET last_number = last_number + 1 WHERE id = ?"
                               " RETURNING last_number", (sub_id,)).fetchone()
            if row is None:
                continue
            conn.execute("INSERT INTO sub_event (sub_id, number, rtype, id, vid, interaction, at)"
                         " VALUES (?, ?, ?, ?, ?, ?, ?)",
                         (sub_id, row[0], event.resource_type, event.id, event.version_id, event.interaction,
                          event.at))

    async def register(self, tx: Transaction, state: SubscriptionState) -> None:
        conn = _conn(tx)
        conn.execute(
            "INSERT INTO sub_state (id, kind, channel, status, owner, spec, attempts, retry_at, error,"
            " heartbeat_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET"
            " kind = excluded.kind, channel = excluded.channel, status = excluded.status, owner = excluded.owner,"
            " spec = excluded.spec, attempts = excluded.attempts, retry_at = excluded.retry_at,"
            " error = excluded.error, heartbeat_at = excluded.heartbeat_at",
            (state.id, state.kind, state.channel, state.status, orjson.dumps(state.owner).decode(),
             orjson.dumps(state.spec).decode(), state.attempts, state.retry_at, state.error, state.heartbeat_at))
        conn.execute("DELETE FROM sub_key WHERE sub_id = ?", (state.id,))
        conn.executemany("INSERT OR IGNORE INTO sub_key (key, sub_id) VALUES (?, ?)",
                         [(k, state.id) for k in state.keys])

    async def unregister(self, tx: Transaction, id: str) -> None:
        conn = _conn(tx)
        for table, column in (("sub_key", "sub_id"), ("sub_event", "sub_id"), ("sub_state", "id")):
            conn.execute(f"DELETE FROM {table} WHERE {column} = ?", (id,))

    async def get(self, id: str) -> SubscriptionState | None:
        row = self.store.reader.execute(f"SELECT {_SELECT} FROM sub_state WHERE id = ?", (id,)).fetchone()
        return None if row is None else _state(row)

    async def claim(self, worker: str, now: float, lease_seconds: float, limit: int, exclude: list[str],
                    websocket_ids: list[str]) -> list[SubscriptionState]:
        where = _DUE
        args: dict[str, Any] = {"now": now}
        if exclude:
            where += f" AND id NOT IN ({','.join(f':x{i}' for i in range(len(exclude)))})"
            args.update({f"x{i}": v for i, v in enumerate(exclude)})
        ws = ",".join(f":w{i}" for i in range(len(websocket_ids))) or "NULL"
        where += f" AND (channel != 'websocket' OR id IN ({ws}))"
        args.update({f"w{i}": v for i, v in enumerate(websocket_ids)})
        # a cheap look on the reader first: most polls find nothing and need no write transaction
        if self.store.reader.execute(f"SELECT 1 FROM sub_state WHERE {where} LIMIT 1", args).fetchone() is None:
            return []
        async with self.store.transaction() as tx:
            rows = tx.connection.execute(
                f"UPDATE sub_state SET lease_owner = :worker, lease_until = :until WHERE id IN"
                f" (SELECT id FROM sub_state WHERE {where} LIMIT :limit) RETURNING {_SELECT}",
                {**args, "worker": worker, "until": now + lease_seconds, "limit": limit}).fetchall()
        return [_state(r) for r in rows]

    async def renew(self, id: str, worker: str, until: float) -> bool:
        async with self.store.transaction() as tx:
            cur = tx.connection.execute("UPDATE sub_state SET lease_until = ? WHERE id = ? AND lease_owner = ?",
                                        (until, id, worker))
        return cur.rowcount == 1

    async def finish(self, id: str, worker: str, changes: dict[str, Any]) -> bool:
        unknown = set(changes) - _CHANGEABLE
        if unknown:
            raise ValueError(f"cannot change {sorted(unknown)}")
        sets = [f"{k} = :{k}" for k in changes] + ["lease_owner = NULL", "lease_until = 0"]
        async with self.store.transaction() as tx:
            cur = tx.connection.execute(
                f"UPDATE sub_state SET {', '.join(sets)} WHERE id = :id AND lease_owner = :worker",
                {**changes, "id": id, "worker": worker})
        return cur.rowcount == 1

    async def events(self, id: str, first: int, last: int, limit: int) -> list[EventRow]:
        rows = self.store.reader.execute(
            "SELECT sub_id, number, rtype, id, vid, interaction, at FROM sub_event"
            " WHERE sub_id = ? AND number >= ? AND number <= ? ORDER BY number LIMIT ?",
            (id, first, last, limit)).fetchall()
        return [EventRow(*r) for r in rows]

    async def prune(self, id: str, below: int, before: str) -> None:
        async with self.store.transaction() as tx:
            tx.connection.execute("DELETE FROM sub_event WHERE sub_id = ? AND number < ? AND at < ?",
                                  (id, below, before))

    async def set_token(self, ids: list[str], token: str, expires: float) -> None:
        async with self.store.transaction() as tx:
            tx.connection.executemany("UPDATE sub_state SET ws_token = ?, ws_token_expires = ? WHERE id = ?",
                                      [(token, expires, i) for i in ids])

    async def by_token(self, token: str) -> list[SubscriptionState]:
        rows = self.store.reader.execute(f"SELECT {_SELECT} FROM sub_state WHERE ws_token = ?", (token,)).fetchall()
        return [_state(r) for r in rows]
