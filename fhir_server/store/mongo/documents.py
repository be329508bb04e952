"""ResourceVersion and IndexRows → MongoDB documents, and back.

Pure functions (no I/O) so the shapes are testable as plain data:

>>> index_document(IndexRows(token=[("status", None, "active", None)]))["token"]
[{'p': 'status', 's': None, 'c': 'active', 'd': None}]
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from typing import Any

from fhir_server.fhir.outcome import PayloadTooLarge
from fhir_server.fhir.search.index import IndexRows
from fhir_server.store.base import ResourceVersion
from fhir_server.store.mongo import names as n

MAX_COMPOSITE_COMBINATIONS = 256  # per group: a composite of two 16-value components is already unusual
DOCUMENT_OVERHEAD = 64 * 1024  # room for the server-owned fields around the body in the 16 MB BSON limit
_PATIENT_PARAMS = ("patient", "subject", "beneficiary", "member")


def index_document(rows: IndexRows | None) -> dict[str, list[dict[str, Any]]]:
    """The ``_ix`` subdocument: every type present, always as an array (empty for deletes)."""
    if rows is None:
        return {t: [] for t in n.IX_TYPES}
    doc: dict[str, list[dict[str, Any]]] = {}
    for ptype, keys in _IX_FIELDS:  # once per write: most types are empty (a Consent fills three of eight)
        values = getattr(rows, ptype)
        doc[ptype] = [dict(zip(keys, row, strict=True)) for row in dict.fromkeys(values)] if values else []
    doc["composite"] = _composites(rows.composite) if rows.composite else []
    return doc


_IX_FIELDS = tuple(n.IX_FIELDS.items())


def _composites(rows: list[tuple[str, int, int, str, tuple[Any, ...]]]) -> list[dict[str, Any]]:
    """Composite rows → one entry per combination of component values of one group.

    ``("code-value-quantity", 0, 0, "token", (sys, code, None))`` and ``(…, 0, 1, "quantity", (…))`` become
    ``{p: "code-value-quantity", g: 0, c0: {s, c, d}, c1: {s, c, u, lo, hi}}`` so one ``$elemMatch`` matches
    values that came from the same element.
    """
    groups: dict[tuple[str, int], dict[int, list[dict[str, Any]]]] = defaultdict(lambda: defaultdict(list))
    for code, group, position, ctype, row in rows:
        keys = n.IX_FIELDS.get(ctype)
        if keys is None:
            continue
        groups[(code, group)][position].append(dict(zip(keys[1:], row, strict=True)))
    out: list[dict[str, Any]] = []
    for (code, group), positions in groups.items():
        ordered = [positions[k] for k in sorted(positions)]
        for combo in itertools.islice(itertools.product(*ordered), MAX_COMPOSITE_COMBINATIONS):
            entry: dict[str, Any] = {"p": code, "g": group}
            entry.update((f"c{k}", value) for k, value in zip(sorted(positions), combo, strict=True))
            out.append(entry)
    return out


def patient_compartment(version: ResourceVersion, rows: IndexRows | None) -> str:
    """The shard-key value: the patient this resource belongs to, else the resource itself.

    A Patient is its own compartment; other resources take their first Patient reference through the usual
    compartment parameters. Resources outside any patient compartment (Organization, ValueSet…) use their own
    key so they still spread over the shards instead of piling onto one ``null`` chunk.
    """
    if version.resource_type == "Patient":
        return f"Patient/{version.id}"
    if rows is not None:
        for param in _PATIENT_PARAMS:
            for code, rtype, rid, _url in rows.reference:
                if code == param and rtype == "Patient" and rid:
                    return f"Patient/{rid}"
    return version.reference


def check_size(version: ResourceVersion, max_bson: int) -> None:
    """Refuse bodies that cannot fit a BSON document with a 413 instead of a driver error."""
    size = len(version.body or b"")
    if size + DOCUMENT_OVERHEAD > max_bson:
        raise PayloadTooLarge(
            f"{version.reference} is {size} bytes as JSON; the MongoDB store keeps at most "
            f"{max_bson - DOCUMENT_OVERHEAD} bytes per resource (the 16 MB BSON document limit)")


def _common(version: ResourceVersion, pc: str) -> dict[str, Any]:
    return {
        n.TYPE: version.resource_type,
        n.RID: version.id,
        n.VID: version.version_id,
        n.LU: version.last_updated,
        n.DELETED: version.deleted,
        n.BODY: version.body,  # bytes: BSON binary subtype 0, as Binary(body) would be, without the copy
        n.PC: pc,
    }


def resource_document(version: ResourceVersion, rows: IndexRows | None) -> dict[str, Any]:
    pc = patient_compartment(version, rows)
    doc = {n.ID: n.resource_key(version.resource_type, version.id), **_common(version, pc)}
    live = None if version.deleted else rows
    doc[n.IX] = index_document(live)
    doc[n.SORT_ASC], doc[n.SORT_DESC] = sort_document(live)
    return doc


def history_document(version: ResourceVersion, pc: str) -> dict[str, Any]:
    doc = {n.ID: n.history_key(version.resource_type, version.id, version.version_id), **_common(version, pc)}
    doc[n.METHOD] = version.method
    doc[n.UNTIL] = n.OPEN_END  # current until the next version sets it
    return doc


# Projection for reads: never fetch the index arrays back.
VERSION_FIELDS = {n.TYPE: 1, n.RID: 1, n.VID: 1, n.LU: 1, n.DELETED: 1, n.BODY: 1, n.METHOD: 1}


def version_from_document(doc: dict[str, Any], method: str | None = None) -> ResourceVersion:
    body = doc.get(n.BODY)
    return ResourceVersion(
        doc[n.TYPE], doc[n.RID], int(doc[n.VID]), doc[n.LU], bool(doc[n.DELETED]),
        None if body is None else bytes(body), method or doc.get(n.METHOD) or "PUT",
    )


def sort_document(rows: IndexRows | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """(``_sa``, ``_sd``): per parameter code, the value an ascending / descending ``_sort`` orders by.

    FHIR sorts a repeating element by its lowest value ascending and its highest descending; precomputing
    both keeps every sort a plain (indexable) field instead of an aggregation over the index arrays.
    """
    asc: dict[str, Any] = {}
    desc: dict[str, Any] = {}

    def add(code: str, low: Any, high: Any) -> None:
        if low is not None and (code not in asc or low < asc[code]):
            asc[code] = low
        if high is not None and (code not in desc or high > desc[code]):
            desc[code] = high

    if rows is None:
        return asc, desc
    for code, folded, _exact in rows.string:
        add(code, folded, folded)
    for code, _system, value, _display in rows.token:
        add(code, value, value)
    for code, rtype, rid, url in rows.reference:
        key = f"{rtype}/{rid}" if rtype and rid else url
        add(code, key, key)
    for code, low, high in rows.date:
        add(code, low, high)
    for code, nlow, nhigh in rows.number:
        add(code, nlow, nhigh)
    for code, *_, qlow, qhigh in rows.quantity:
        add(code, qlow, qhigh)
    for code, uri in rows.uri:
        add(code, uri, uri)
    return asc, desc
