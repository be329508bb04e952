"""History queries (instance, type, system; ``_since``, ``_at``; keyset pages, newest first). Pure filters.

Pages walk ``(_lu, _id)`` backwards. A global counter document incremented by every write would give a single
sequence, but it would also make *every* pair of concurrent transactions write-conflict on that one document;
``_lu`` plus the unique history ``_id`` orders just as well without serialising writers. ``_at`` uses ``_until``
(the lastUpdated of the next version, written in the same transaction as that version) so "the version current
at T" is one indexed range: ``_lu <= T < _until``.

>>> history_filter(HistoryQuery("Consent", "1", since="2026-01-01T00:00:00.000Z"))
{'_type': 'Consent', '_rid': '1', '_lu': {'$gte': '2026-01-01T00:00:00.000Z'}}
"""

from __future__ import annotations

from typing import Any

from fhir_server.store.base import HistoryQuery
from fhir_server.store.mongo import names as n
from fhir_server.store.mongo.paging import Spec

HISTORY_SORT: Spec = [(n.LU, -1), (n.ID, -1)]


def history_filter(query: HistoryQuery) -> dict[str, Any]:
    filt: dict[str, Any] = {}
    if query.resource_type is not None:
        filt[n.TYPE] = query.resource_type
    if query.id is not None:
        filt[n.RID] = query.id
    lu: dict[str, Any] = {}
    if query.since is not None:
        lu["$gte"] = query.since
    if query.at is not None:
        lu["$lte"] = query.at
        filt[n.UNTIL] = {"$gt": query.at}
    if lu:
        filt[n.LU] = lu
    return filt
