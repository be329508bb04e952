"""Which subscriptions a written resource matches — index-like, not "run every subscription's search".

Each subscription is filed under keys (:func:`subscription_keys`): for every ORed filter, the values of ONE
equality parameter of it (``Consent|patient=123``, ``Observation|status=final``, ``Patient|_id=1``), or
``<Type>|*`` when the filter has no such parameter. A written resource produces its keys from the index
values extracted for it anyway (:func:`resource_keys`): ``<Type>|*``, ``_id`` and one key per token code and
reference id. The store returns the subscriptions filed under any of them (one indexed lookup); only those
candidates' criteria are evaluated — in memory against the index values when every filter is a plain token,
reference or ``_id`` equality (:func:`evaluate`), else with the store's own search restricted to the written
resource, inside the write's transaction (exact search semantics: chains, dates, modifiers…).
"""

from __future__ import annotations

from dataclasses import replace
from functools import lru_cache

from fhir_server.fhir.search.ast import Filter as SearchFilter
from fhir_server.fhir.search.ast import Has, ReferenceValue, SearchQuery, TokenValue
from fhir_server.fhir.search.index import IndexRows
from fhir_server.store.base import ResourceVersion, Transaction
from fhir_server.subscriptions.model import Filter, Spec
from fhir_server.subscriptions.parse import criteria_query

ANY = "*"


def _filter_key(f: SearchFilter) -> list[str] | None:
    """The key values of one search filter if it is a plain equality usable as a key, else None."""
    if f.modifier or f.chain or f.missing is not None or not f.values:
        return None
    keys: list[str] = []
    for v in f.values:
        if f.type == "token" and isinstance(v, TokenValue) and v.code and v.system != "":
            keys.append(f"{f.name}={v.system}|{v.code}" if v.system else f"{f.name}={v.code}")
        elif f.type == "reference" and isinstance(v, ReferenceValue) and v.id and not f.target_type:
            keys.append(f"{f.name}={v.type}/{v.id}" if v.type else f"{f.name}={v.id}")
        elif f.type == "special" and f.name == "_id" and isinstance(v, TokenValue) and v.code:
            keys.append(f"_id={v.code}")
        else:
            return None
    return keys


_PREFERENCE = {"special": 0, "reference": 1, "token": 2}


def filter_keys(f: Filter) -> list[str]:
    """Keys of one subscription filter (ORed alternatives).

    >>> filter_keys(Filter("Consent", "patient=Patient/1,2&status=active"))
    ['Consent|patient=Patient/1', 'Consent|patient=Patient/2']
    >>> filter_keys(Filter("Observation", "date=ge2020"))
    ['Observation|*']
    """
    query = criteria_query(f"{f.resource_type}?{f.query}")
    best: list[str] | None = None
    best_rank = 99
    for sf in query.filters:
        if isinstance(sf, Has):
            continue
        keys = _filter_key(sf)
        rank = _PREFERENCE.get(sf.type, 99)
        if keys is not None and rank < best_rank:
            best, best_rank = keys, rank
    return [f"{f.resource_type}|{k}" for k in (best or [ANY])]


def subscription_keys(spec: Spec) -> list[str]:
    return sorted({k for f in spec.filters for k in filter_keys(f)})


def resource_keys(resource_type: str, id: str, rows: IndexRows) -> list[str]:
    """Keys a written resource meets, in no particular order (computed for every write: not sorted).

    >>> rows = IndexRows(token=[("status", None, "active", None)], reference=[("patient", "Patient", "1", None)])
    >>> sorted(resource_keys("Consent", "c1", rows))
    ['Consent|*', 'Consent|_id=c1', 'Consent|patient=1', 'Consent|patient=Patient/1', 'Consent|status=active']
    """
    keys = {f"{resource_type}|{ANY}", f"{resource_type}|_id={id}"}
    for p, system, code, _d in rows.token:
        if code:
            keys.add(f"{resource_type}|{p}={code}")
            if system:
                keys.add(f"{resource_type}|{p}={system}|{code}")
    for p, rtype, rid, _u in rows.reference:
        if rid:
            keys.add(f"{resource_type}|{p}={rid}")
            if rtype:
                keys.add(f"{resource_type}|{p}={rtype}/{rid}")
    return list(keys)


def _token_match(rows: IndexRows, name: str, v: TokenValue) -> bool:
    for p, system, code, _d in rows.token:
        if p != name or code != v.code:
            continue
        if v.system is None or (v.system == "" and not system) or v.system == system:
            return True
    return False


def _reference_match(rows: IndexRows, name: str, v: ReferenceValue) -> bool:
    return any(p == name and rid == v.id and (v.type is None or t == v.type)
               for p, t, rid, _u in rows.reference)


def evaluate(query: SearchQuery, id: str, rows: IndexRows) -> bool | None:
    """Does the written resource match ``query``? None when a filter needs the store's search.

    >>> rows = IndexRows(token=[("status", None, "active", None)], reference=[("patient", "Patient", "1", None)])
    >>> evaluate(criteria_query("Consent?patient=Patient/1&status=active,draft"), "c1", rows)
    True
    >>> evaluate(criteria_query("Consent?patient=2"), "c1", rows)
    False
    >>> evaluate(criteria_query("Consent?date=ge2020"), "c1", rows) is None
    True
    """
    for f in query.filters:
        if isinstance(f, Has) or f.modifier or f.chain or f.missing is not None or f.target_type:
            return None
        if f.type == "token":
            ok = any(isinstance(v, TokenValue) and v.code and _token_match(rows, f.name, v) for v in f.values)
            if not all(isinstance(v, TokenValue) and v.code for v in f.values):
                return None
        elif f.type == "reference":
            if not all(isinstance(v, ReferenceValue) and v.id for v in f.values):
                return None
            ok = any(isinstance(v, ReferenceValue) and _reference_match(rows, f.name, v) for v in f.values)
        elif f.type == "special" and f.name == "_id":
            ok = any(isinstance(v, TokenValue) and v.code == id for v in f.values)
        else:
            return None
        if not ok:
            return False
    return True


Compiled = tuple[tuple[str, SearchQuery, tuple[frozenset[str], ...] | None], ...]


@lru_cache(maxsize=8192)
def compiled(filters: str) -> Compiled:
    """A candidate's filter lines (``store.subscriptions.filters_text``) parsed once: (type, query, keys) where
    ``keys``, when every filter of the line is a plain equality, lists per ANDed filter the resource keys that
    satisfy it (so matching is a few set look-ups in the keys the write produced anyway)."""
    out = []
    for line in filters.splitlines():
        rtype = line.partition("?")[0]
        query = criteria_query(line)
        per_filter = [None if isinstance(f, Has) else _filter_key(f) for f in query.filters]
        keys = None if any(k is None for k in per_filter) else \
            tuple(frozenset(f"{rtype}|{k}" for k in ks or ()) for ks in per_filter)
        out.append((rtype, query, keys))
    return tuple(out)


def quick(filters: str, resource_type: str, written_keys: set[str]) -> bool | None:
    """Decide from keys alone (see :func:`compiled`); None when a filter line needs :func:`matches`."""
    undecided = False
    for rtype, _query, keys in compiled(filters):
        if rtype != resource_type:
            continue
        if keys is None:
            undecided = True
        elif all(not k.isdisjoint(written_keys) for k in keys):
            return True
    return None if undecided else False


async def matches(tx: Transaction, filters: str, version: ResourceVersion, rows: IndexRows) -> bool:
    """Does ``version`` (the new one; for a delete the last one, still current in ``tx``) match any filter?"""
    for rtype, query, _keys in compiled(filters):
        if rtype != version.resource_type:
            continue
        found = evaluate(query, version.id, rows)
        if found is None:
            restricted = replace(query, ids=(version.id,), count=1, total="none")
            found = bool((await tx.search(restricted)).matches)
        if found:
            return True
    return False
