"""SQLite tables for resources and history (index tables live in :mod:`.index`).

``resource.rid`` is a stable integer key: index rows point at it, and keyset paging orders by it.
``history.seq`` grows with every write across the whole server; history pages walk it backwards.
Timestamps are fixed-format UTC instants (see ``ResourceVersion``), so text order is time order.
"""

RESOURCE_DDL = """
CREATE TABLE IF NOT EXISTS resource (
    rid           INTEGER PRIMARY KEY,
    rtype         TEXT    NOT NULL,
    id            TEXT    NOT NULL,
    vid           INTEGER NOT NULL,
    last_updated  TEXT    NOT NULL,
    deleted       INTEGER NOT NULL DEFAULT 0,
    body          BLOB,
    UNIQUE (rtype, id)
);
CREATE INDEX IF NOT EXISTS resource_type_updated ON resource (rtype, last_updated);
CREATE INDEX IF NOT EXISTS resource_updated ON resource (last_updated);

CREATE TABLE IF NOT EXISTS history (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    rtype         TEXT    NOT NULL,
    id            TEXT    NOT NULL,
    vid           INTEGER NOT NULL,
    last_updated  TEXT    NOT NULL,
    deleted       INTEGER NOT NULL,
    method        TEXT    NOT NULL,
    body          BLOB,
    UNIQUE (rtype, id, vid)
);
CREATE INDEX IF NOT EXISTS history_type_seq ON history (rtype, seq);
CREATE INDEX IF NOT EXISTS history_instance_seq ON history (rtype, id, seq);
CREATE INDEX IF NOT EXISTS history_updated ON history (last_updated);
"""
