"""Subscription state, matching keys and the event outbox in SQLite (see :mod:`fhir_server.store.subscriptions`).

Events are appended on the writer connection inside the write's own ``BEGIN IMMEDIATE`` transaction, so a
committed write always has its events. Ingest must not slow down much with many subscriptions, so what a
transaction writes does not grow with the subscriptions each write matches, only with the writes: just before it
commits, one batch of ``outbox_event`` rows — one per written version, its matched subscriptions listed in
``subs`` (``,3,17,42,``: integer keys) — and one ``UPDATE`` that marks the matched subscriptions that had nothing
pending as due (``subscription_counter.due_from``, set once, to the transaction's first event; already-due ones are
only looked at). An earlier design wrote a ``subscription_pending`` row per (subscription, write): two B-tree
inserts for each of the ~10 subscriptions a write matched, most of the cost of recording.

``due_from`` is 0 when the subscription has nothing unnumbered, else a lower bound of its first unnumbered event
(every event of it below is numbered or dropped). Eids are given under the writer lock and commit in order, so
the pending events are the ``outbox_event`` rows from ``due_from`` on that list the subscription. A delivery
worker holding the subscription's lease gates them and numbers those its owner may see into
``subscription_event`` from ``subscription_counter`` in one small transaction, which also moves ``due_from`` to
the next event that lists it (or 0) — serialized with the writes, so an event committed meanwhile is never missed
(``PRIMARY KEY (sid, number)`` makes a duplicate number impossible).

Matching reads ``subscription_key`` only (a subscription that is ``off`` has no keys), through a process-wide copy
that is reloaded when ``subscription_keys_version`` — a random token every (un)registration changes, read once per
write transaction — says the keys changed, in this process or another. Leases are small write transactions of their
own through the store's writer lock; nothing is held across an HTTP request.
"""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING, Any

import orjson

from fhir_server.store.base import Transaction
from fhir_server.store.subscriptions import Candidate, EventRow, Pending, SubscriptionState, filters_text

if TYPE_CHECKING:
    from fhir_server.store.sqlite.store import SQLiteStore

DDL = """
CREATE TABLE IF NOT EXISTS subscription_state (
    sid              INTEGER PRIMARY KEY,
    id               TEXT NOT NULL UNIQUE,
    kind             TEXT NOT NULL,
    channel          TEXT NOT NULL,
    status           TEXT NOT NULL,
    owner            TEXT NOT NULL,
    spec             TEXT NOT NULL,
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
CREATE INDEX IF NOT EXISTS subscription_state_token ON subscription_state (ws_token);
CREATE TABLE IF NOT EXISTS subscription_counter (
    sid         INTEGER PRIMARY KEY,
    last_number INTEGER NOT NULL DEFAULT 0,
    due_from    INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS subscription_key (
    key     TEXT NOT NULL,
    sid     INTEGER NOT NULL,
    filters TEXT NOT NULL,
    PRIMARY KEY (key, sid)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS subscription_key_sid ON subscription_key (sid);
CREATE TABLE IF NOT EXISTS outbox_event (
    eid         INTEGER PRIMARY KEY,
    rtype       TEXT NOT NULL,
    id          TEXT NOT NULL,
    vid         INTEGER NOT NULL,
    interaction TEXT NOT NULL,
    at          TEXT NOT NULL,
    subs        TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS subscription_event (
    sid    INTEGER NOT NULL,
    number INTEGER NOT NULL,
    eid    INTEGER NOT NULL,
    PRIMARY KEY (sid, number)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS subscription_event_eid ON subscription_event (eid);
CREATE TABLE IF NOT EXISTS subscription_keys_version (
    one   INTEGER PRIMARY KEY CHECK (one = 1),
    token INTEGER NOT NULL
);
INSERT OR IGNORE INTO subscription_keys_version (one, token) VALUES (1, random());
"""
CACHED_KEYS = 20_000  # above this many subscription keys, matching asks the table instead of a process cache
_TOKEN = "subscription_keys_token"


_STATE_COLUMNS = ("id", "kind", "channel", "status", "owner", "spec", "last_number", "delivered", "attempts",
                  "retry_at", "error", "heartbeat_at", "last_sent", "lease_owner", "lease_until", "ws_token",
                  "ws_token_expires")
_SELECT = ", ".join(f"c.{c}" if c == "last_number" else f"s.{c}" for c in _STATE_COLUMNS)
_FROM = "subscription_state s JOIN subscription_counter c ON c.sid = s.sid"
_CHANGEABLE = frozenset(_STATE_COLUMNS) - {"id", "kind", "channel", "owner", "spec", "last_number"}
_DUE = ("s.status != 'off' AND s.lease_until < :now AND s.retry_at <= :now AND ("
        " (s.status = 'active' AND c.last_number > s.delivered)"
        " OR (s.status = 'requested' AND s.kind = 'topic' AND s.channel = 'rest-hook')"
        " OR (s.heartbeat_at IS NOT NULL AND s.heartbeat_at <= :now)"
        " OR c.due_from > 0)")


def _state(row: sqlite3.Row | tuple[Any, ...]) -> SubscriptionState:
    values = dict(zip(_STATE_COLUMNS, row, strict=True))
    values["owner"] = orjson.loads(values["owner"])
    values["spec"] = orjson.loads(values["spec"])
    values["keys"] = []
    return SubscriptionState(**values)


def _conn(tx: Transaction) -> sqlite3.Connection:
    return tx.connection  # type: ignore[attr-defined,no-any-return]


def _marks(n: int) -> str:
    return ",".join("?" * n)


def _listed(sid: int | str) -> str:
    """The ``instr`` needle that finds subscription ``sid`` in an ``outbox_event.subs`` list."""
    return f",{sid},"


def migrate(conn: sqlite3.Connection) -> None:
    """Bring a database written with ``subscription_pending`` rows (one per subscription and write) to the
    one-row-per-version outbox: the rows become ``outbox_event.subs`` lists and ``due_from`` marks, in one
    transaction (several processes may open the database at once: the first one converts it)."""
    if conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'subscription_pending'").fetchone() is None:
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        if conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'subscription_pending'").fetchone() is not None:
            if "subs" not in {r[1] for r in conn.execute("PRAGMA table_info(outbox_event)")}:
                conn.execute("ALTER TABLE outbox_event ADD COLUMN subs TEXT NOT NULL DEFAULT ''")
            if "due_from" not in {r[1] for r in conn.execute("PRAGMA table_info(subscription_counter)")}:
                conn.execute("ALTER TABLE subscription_counter ADD COLUMN due_from INTEGER NOT NULL DEFAULT 0")
            conn.execute("UPDATE outbox_event SET subs = (SELECT ',' || group_concat(p.sid, ',') || ',' FROM"
                         " subscription_pending p WHERE p.eid = outbox_event.eid)"
                         " WHERE eid IN (SELECT eid FROM subscription_pending)")
            conn.execute("UPDATE subscription_counter SET due_from = coalesce((SELECT min(p.eid) FROM"
                         " subscription_pending p WHERE p.sid = subscription_counter.sid), 0)")
            conn.execute("DROP TABLE subscription_pending")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


class SQLiteSubscriptions:
    """The tables are created with the store's own (``SQLiteStore.open``), so a write on any SQLite store can
    look for subscriptions; operations inside a write use only the transaction's connection. Inside a write,
    :class:`~fhir_server.store.subscriptions.Candidate` ids are the integer keys (as text)."""

    def __init__(self, store: SQLiteStore) -> None:
        self.store = store
        # token → key → candidates (None: too many keys to copy); the tokens are random, so databases sharing
        # this process-wide object cannot mistake one another's copies
        self._keys: dict[int, dict[str, list[Candidate]] | None] = {}

    async def open(self) -> None:
        """Nothing to do: ``DDL`` runs when the store opens."""

    async def candidates(self, tx: Transaction, keys: list[str]) -> list[Candidate]:
        conn = _conn(tx)
        token = tx.notes.get(_TOKEN)
        if token is None:
            token = tx.notes[_TOKEN] = conn.execute("SELECT token FROM subscription_keys_version").fetchone()[0]
        if token not in self._keys:
            self._keys = {token: self._load(conn)}  # the copy of the latest token only
        copy = self._keys[token]
        if copy is None:
            rows = conn.execute(f"SELECT sid, filters FROM subscription_key WHERE key IN ({_marks(len(keys))})",
                                keys).fetchall()
            return [Candidate(str(sid), filters) for sid, filters in dict(rows).items()]
        hits = [found for k in keys if (found := copy.get(k)) is not None]
        if len(hits) <= 1:  # most writes meet one key with subscriptions: no merging (the caller only reads it)
            return hits[0] if hits else []
        merged: dict[str, Candidate] = {}
        for candidates in hits:
            for c in candidates:
                merged[c.id] = c
        return list(merged.values())

    @staticmethod
    def _load(conn: sqlite3.Connection) -> dict[str, list[Candidate]] | None:
        rows = conn.execute("SELECT key, sid, filters FROM subscription_key LIMIT ?", (CACHED_KEYS + 1,)).fetchall()
        if len(rows) > CACHED_KEYS:
            return None
        copy: dict[str, list[Candidate]] = {}
        for key, sid, filters in rows:
            copy.setdefault(key, []).append(Candidate(str(sid), filters))
        return copy

    @staticmethod
    def _changed(tx: Transaction) -> None:
        """The keys change in this transaction: a new token tells every process to reload its copy."""
        _conn(tx).execute("UPDATE subscription_keys_version SET token = random()")
        tx.notes.pop(_TOKEN, None)

    async def append(self, tx: Transaction, batch: list[tuple[list[str], EventRow]]) -> None:
        conn = _conn(tx)
        # the writer lock and BEGIN IMMEDIATE keep every other writer out: the next eids are ours to give
        first = conn.execute("SELECT coalesce(max(eid), 0) + 1 FROM outbox_event").fetchone()[0]
        conn.executemany(
            "INSERT INTO outbox_event (eid, rtype, id, vid, interaction, at, subs) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [(first + i, e.resource_type, e.id, e.version_id, e.interaction, e.at, f",{','.join(sids)},")
             for i, (sids, e) in enumerate(batch)])
        # due from this transaction's first event (a lower bound) unless already due: one statement, and only
        # the subscriptions that had nothing pending are written
        matched = {sid for sids, _ in batch for sid in sids}
        conn.execute("UPDATE subscription_counter SET due_from = ? WHERE due_from = 0"
                     " AND sid IN (SELECT value FROM json_each(?))", (first, f"[{','.join(matched)}]"))

    async def register(self, tx: Transaction, state: SubscriptionState) -> None:
        conn = _conn(tx)
        sid = conn.execute(
            "INSERT INTO subscription_state (id, kind, channel, status, owner, spec, attempts, retry_at, error,"
            " heartbeat_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET"
            " kind = excluded.kind, channel = excluded.channel, status = excluded.status, owner = excluded.owner,"
            " spec = excluded.spec, attempts = excluded.attempts, retry_at = excluded.retry_at,"
            " error = excluded.error, heartbeat_at = excluded.heartbeat_at RETURNING sid",
            (state.id, state.kind, state.channel, state.status, orjson.dumps(state.owner).decode(),
             orjson.dumps(state.spec).decode(), state.attempts, state.retry_at, state.error, state.heartbeat_at),
        ).fetchone()[0]
        conn.execute("INSERT OR IGNORE INTO subscription_counter (sid) VALUES (?)", (sid,))
        conn.execute("DELETE FROM subscription_key WHERE sid = ?", (sid,))
        filters = filters_text(state.spec)
        conn.executemany("INSERT OR IGNORE INTO subscription_key (key, sid, filters) VALUES (?, ?, ?)",
                         [(k, sid, filters) for k in state.keys])
        self._changed(tx)

    async def unregister(self, tx: Transaction, id: str) -> None:
        conn = _conn(tx)
        row = conn.execute("SELECT sid FROM subscription_state WHERE id = ?", (id,)).fetchone()
        if row is None:
            return
        for table in ("subscription_key", "subscription_event", "subscription_counter", "subscription_state"):
            conn.execute(f"DELETE FROM {table} WHERE sid = ?", row)
        self._changed(tx)

    async def get(self, id: str) -> SubscriptionState | None:
        row = self.store.reader.execute(f"SELECT {_SELECT} FROM {_FROM} WHERE s.id = ?", (id,)).fetchone()
        return None if row is None else _state(row)

    async def claim(self, worker: str, now: float, lease_seconds: float, limit: int, exclude: list[str],
                    websocket_ids: list[str]) -> list[SubscriptionState]:
        where = _DUE
        args: dict[str, Any] = {"now": now}
        if exclude:
            where += f" AND s.id NOT IN ({','.join(f':x{i}' for i in range(len(exclude)))})"
            args.update({f"x{i}": v for i, v in enumerate(exclude)})
        ws = ",".join(f":w{i}" for i in range(len(websocket_ids))) or "NULL"
        where += f" AND (s.channel != 'websocket' OR s.id IN ({ws}))"
        args.update({f"w{i}": v for i, v in enumerate(websocket_ids)})
        # a cheap look on the reader first: most polls find nothing and need no write transaction
        if self.store.reader.execute(f"SELECT 1 FROM {_FROM} WHERE {where} LIMIT 1", args).fetchone() is None:
            return []
        async with self.store.transaction() as tx:
            conn = tx.connection
            sids = [r[0] for r in conn.execute(f"SELECT s.sid FROM {_FROM} WHERE {where} LIMIT :limit",
                                               {**args, "limit": limit}).fetchall()]
            if not sids:
                return []
            conn.execute(f"UPDATE subscription_state SET lease_owner = ?, lease_until = ? WHERE sid IN"
                         f" ({_marks(len(sids))})", (worker, now + lease_seconds, *sids))
            rows = conn.execute(f"SELECT {_SELECT} FROM {_FROM} WHERE s.sid IN ({_marks(len(sids))})",
                                sids).fetchall()
        return [_state(r) for r in rows]

    async def renew(self, id: str, worker: str, until: float) -> bool:
        async with self.store.transaction() as tx:
            cur = tx.connection.execute(
                "UPDATE subscription_state SET lease_until = ? WHERE id = ? AND lease_owner = ?", (until, id, worker))
        return cur.rowcount == 1

    async def finish(self, id: str, worker: str, changes: dict[str, Any]) -> bool:
        unknown = set(changes) - _CHANGEABLE
        if unknown:
            raise ValueError(f"cannot change {sorted(unknown)}")
        sets = [f"{k} = :{k}" for k in changes] + ["lease_owner = NULL", "lease_until = 0"]
        async with self.store.transaction() as tx:
            cur = tx.connection.execute(
                f"UPDATE subscription_state SET {', '.join(sets)} WHERE id = :id AND lease_owner = :worker",
                {**changes, "id": id, "worker": worker})
        return cur.rowcount == 1

    async def pending(self, id: str, limit: int) -> list[Pending]:
        rows = self.store.reader.execute(
            "SELECT o.eid, o.rtype, o.id, o.vid, o.interaction, o.at FROM subscription_state s"
            " JOIN subscription_counter c ON c.sid = s.sid JOIN outbox_event o ON o.eid >= c.due_from"
            " WHERE s.id = ? AND c.due_from > 0 AND instr(o.subs, ',' || s.sid || ',') > 0 ORDER BY o.eid LIMIT ?",
            (id, limit)).fetchall()
        return [Pending(eid, EventRow(id, 0, *rest)) for eid, *rest in rows]

    async def number(self, id: str, worker: str, accepted: list[Any], consumed: list[Any], until: float
                     ) -> int | None:
        if not consumed:
            return None
        async with self.store.transaction() as tx:
            conn = tx.connection
            row = conn.execute(f"SELECT s.sid, c.last_number, c.due_from FROM {_FROM}"
                               " WHERE s.id = ? AND s.lease_owner = ?", (id, worker)).fetchone()
            # numbered meanwhile by another worker: due_from moved past them (or to 0); nothing is changed
            if row is None or not 0 < row[2] <= min(consumed):
                return None
            sid, last, _ = row
            conn.executemany("INSERT INTO subscription_event (sid, number, eid) VALUES (?, ?, ?)",
                             [(sid, last + i, eid) for i, eid in enumerate(accepted, 1)])
            last += len(accepted)
            # the next event that lists it; writers are kept out by this transaction, so none is missed
            following = conn.execute("SELECT eid FROM outbox_event WHERE eid > ? AND instr(subs, ?) > 0"
                                     " ORDER BY eid LIMIT 1", (max(consumed), _listed(sid))).fetchone()
            conn.execute("UPDATE subscription_counter SET last_number = ?, due_from = ? WHERE sid = ?",
                         (last, 0 if following is None else following[0], sid))
            conn.execute("UPDATE subscription_state SET lease_until = ? WHERE sid = ?", (until, sid))
        return int(last)

    async def events(self, id: str, first: int, last: int, limit: int) -> list[EventRow]:
        rows = self.store.reader.execute(
            "SELECT s.id, e.number, o.rtype, o.id, o.vid, o.interaction, o.at FROM subscription_state s"
            " JOIN subscription_event e ON e.sid = s.sid JOIN outbox_event o ON o.eid = e.eid"
            " WHERE s.id = ? AND e.number >= ? AND e.number <= ? ORDER BY e.number LIMIT ?",
            (id, first, last, limit)).fetchall()
        return [EventRow(*r) for r in rows]

    async def prune(self, id: str, below: int, before: str) -> None:
        async with self.store.transaction() as tx:
            conn = tx.connection
            conn.execute(
                "DELETE FROM subscription_event WHERE sid = (SELECT sid FROM subscription_state WHERE id = ?)"
                " AND number < ? AND (SELECT at FROM outbox_event o WHERE o.eid = subscription_event.eid) < ?",
                (id, below, before))
            # event rows no subscription refers to any more (eids only grow: everything below the smallest)
            conn.execute("DELETE FROM outbox_event WHERE eid < min(coalesce((SELECT min(eid) FROM subscription_event),"
                         " (SELECT max(eid) + 1 FROM outbox_event)), coalesce((SELECT min(due_from) FROM"
                         " subscription_counter WHERE due_from > 0), (SELECT max(eid) + 1 FROM outbox_event)))")

    async def set_token(self, ids: list[str], token: str, expires: float) -> None:
        async with self.store.transaction() as tx:
            tx.connection.executemany(
                "UPDATE subscription_state SET ws_token = ?, ws_token_expires = ? WHERE id = ?",
                [(token, expires, i) for i in ids])

    async def by_token(self, token: str) -> list[SubscriptionState]:
        rows = self.store.reader.execute(f"SELECT {_SELECT} FROM {_FROM} WHERE s.ws_token = ?", (token,)).fetchall()
        return [_state(r) for r in rows]
