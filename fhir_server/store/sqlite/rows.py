"""Row ↔ ResourceVersion conversion shared by the SQLite modules."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fhir_server.store.base import ResourceVersion


def version_from_row(row: Sequence[Any], method: str) -> ResourceVersion:
    """``row`` = (rtype, id, vid, last_updated, deleted, body)."""
    rtype, id_, vid, last_updated, deleted, body = row
    return ResourceVersion(rtype, id_, vid, last_updated, bool(deleted), body, method)
