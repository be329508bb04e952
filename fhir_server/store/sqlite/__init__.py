"""The embedded SQLite store."""

from fhir_server.store.sqlite.store import SQLiteStore, SQLiteTransaction

__all__ = ["SQLiteStore", "SQLiteTransaction"]
