"""The index set, created at open() (``createIndexes`` is a no-op for indexes that already exist).

docs/mongodb.md explains each one. The rules behind them: equality fields first, then the sort, then ranges
(MongoDB's ESR rule); each ``_ix.<type>`` index stays inside one array, because a compound multikey index may
not span two arrays ("parallel arrays"); and every query ends its sort on the unique ``_id`` so keyset paging
is one index range scan.
"""

from __future__ import annotations

from pymongo import ASCENDING as ASC
from pymongo import DESCENDING as DESC
from pymongo import IndexModel

from fhir_server.store.mongo import names as n


def _ix(ptype: str, *keys: str) -> IndexModel:
    fields = [(n.TYPE, ASC), *((n.ix(ptype, k), ASC) for k in ("p", *keys))]
    return IndexModel(fields, name="_".join(("ix", ptype, *keys)).replace(".", "_"))


RESOURCE_INDEXES: list[IndexModel] = [
    # type searches without criteria, paged by _id; _del is an equality, so it sits before the sort key.
    IndexModel([(n.TYPE, ASC), (n.DELETED, ASC), (n.ID, ASC)], name="type_live_id"),
    IndexModel([(n.TYPE, ASC), (n.RID, ASC)], name="type_rid"),  # _id=… searches, chains' second step
    IndexModel([(n.TYPE, ASC), (n.LU, ASC)], name="type_lastupdated"),  # _lastUpdated, _sort=_lastUpdated
    _ix("token", "c", "s"),  # status=active, identifier=sys|value: code is far more selective than system
    _ix("token", "d"),  # :text
    _ix("reference", "i", "t"),  # patient=Patient/1, chains, _has
    _ix("reference", "u"),  # absolute and canonical references
    _ix("string", "v"),  # prefix (index bounds from ^literal), :contains scans only this index
    _ix("string", "e"),  # :exact
    _ix("date", "lo", "hi"),
    _ix("number", "lo", "hi"),
    _ix("quantity", "c", "lo"),
    _ix("uri", "v"),
    _ix("composite", "c0.c"),  # composites lead with a token component (code-value-quantity…)
    # _revinclude=*: who refers to these resources, whatever their type.
    IndexModel([(n.ix("reference", "i"), ASC), (n.ix("reference", "t"), ASC)], name="ix_reference_any"),
    IndexModel([(n.PC, ASC)], name="patient_compartment"),  # the shard key's index (and compartment reads)
    # bulk export scans (store/mongo/export_jobs.py): keyset pages by (type,) lastUpdated, _id.
    IndexModel([(n.TYPE, ASC), (n.LU, ASC), (n.ID, ASC)], name="export_type_lu_id"),
    IndexModel([(n.LU, ASC), (n.ID, ASC)], name="export_lu_id"),
]

HISTORY_INDEXES: list[IndexModel] = [
    IndexModel([(n.LU, DESC), (n.ID, DESC)], name="lastupdated_id"),  # system history pages
    IndexModel([(n.TYPE, ASC), (n.LU, DESC), (n.ID, DESC)], name="type_lastupdated_id"),  # type history
    IndexModel([(n.TYPE, ASC), (n.RID, ASC), (n.LU, DESC), (n.ID, DESC)], name="instance_lastupdated_id"),
    IndexModel([(n.UNTIL, ASC), (n.LU, DESC)], name="until_lastupdated"),  # _at: versions current then
    IndexModel([(n.PC, ASC)], name="patient_compartment"),
]
