"""``Patient/[id]/$everything`` (R4 operation-patient-everything): a patient's compartment, through the gate.

What is returned: the Patient, then every resource in that Patient's compartment (R4 CompartmentDefinition
``patient``), type by type in the definition's order and by id within a type — only what the caller may see
(:meth:`Gate.visible` decides each one; a withheld resource is absent, also from the count and the links).

Parameters (R4): ``start``/``end`` — care dates: a resource whose type has a ``date`` search parameter is kept
when that date overlaps [start, end]; resources without one are kept whatever the range (the spec leaves it to the
server). ``_since`` — ``meta.lastUpdated`` at or after the instant. ``_type`` — only these types.
``_count`` — page size; the next page continues after the last resource shown (an opaque cursor naming that
visible resource).

Bulk export calls :func:`everything` directly (an async iterator of visible versions in this order).
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from dataclasses import dataclass

from fhir_server.consent.compartment import compartment_params, compartment_types
from fhir_server.consent.gate import Gate
from fhir_server.fhir.outcome import BadRequest
from fhir_server.fhir.search import definitions
from fhir_server.fhir.search.api import parse_search
from fhir_server.security.caller import Caller
from fhir_server.store.base import ResourceVersion, Store

BATCH = 1000
CHUNK = 50  # versions judged by the gate at a time


@dataclass(frozen=True, slots=True)
class EverythingQuery:
    patient_id: str
    start: str | None = None  # a FHIR date
    end: str | None = None
    since: str | None = None  # a FHIR instant
    types: tuple[str, ...] = ()  # empty: every compartment type
    count: int = 20
    cursor: str | None = None  # from a previous page

    def after(self) -> tuple[int, str] | None:
        """The (type position, id) the page starts after."""
        if not self.cursor:
            return None
        try:
            text = base64.urlsafe_b64decode(self.cursor + "=" * (-len(self.cursor) % 4)).decode()
            position, _, rid = text.partition("/")
            return int(position), rid
        except (ValueError, UnicodeDecodeError):
            raise BadRequest("_cursor is not a cursor this server issued for $everything", ["_cursor"]) from None


def encode_cursor(position: int, rid: str) -> str:
    return base64.urlsafe_b64encode(f"{position}/{rid}".encode()).decode().rstrip("=")


def types_of(query: EverythingQuery) -> list[str]:
    """Patient first, then the compartment's other types (sorted), limited to ``_type``."""
    order = ["Patient", *[t for t in compartment_types() if t != "Patient"]]
    return [t for t in order if not query.types or t in query.types]


async def _of_type(store: Store, rtype: str, query: EverythingQuery) -> list[ResourceVersion]:
    """Every resource of ``rtype`` in the patient's compartment that passes the date filters, by id."""
    found: dict[str, ResourceVersion] = {}
    if rtype == "Patient":
        me = await store.read("Patient", query.patient_id)
        if me is not None and not me.deleted and (query.since is None or me.last_updated >= query.since):
            found[me.id] = me
    dated = "date" in definitions.params_for(rtype)
    for param in compartment_params(rtype):
        if param == "{*}":
            continue
        pairs = [(param, f"Patient/{query.patient_id}"), ("_count", str(BATCH)), ("_total", "none")]
        if dated and query.start:
            pairs.append(("date", f"ge{query.start}"))
        if dated and query.end:
            pairs.append(("date", f"le{query.end}"))
        if query.since:
            pairs.append(("_lastUpdated", f"ge{query.since}"))
        search = parse_search(rtype, pairs, strict=True, max_count=BATCH)
        while True:
            page = await store.search(search)
            for v in page.matches:
                found.setdefault(v.id, v)
            if not page.next_cursor:
                break
            search = search.with_cursor(page.next_cursor)
    return [found[k] for k in sorted(found)]


async def everything(store: Store, gate: Gate, caller: Caller, query: EverythingQuery
                     ) -> AsyncIterator[tuple[int, ResourceVersion]]:
    """(type position, version) of every visible resource of the compartment, in order, after the cursor."""
    after = query.after()
    for position, rtype in enumerate(types_of(query)):
        if after is not None and position < after[0]:
            continue
        versions = await _of_type(store, rtype, query)
        if after is not None and position == after[0]:
            versions = [v for v in versions if v.id > after[1]]
        for start in range(0, len(versions), CHUNK):
            for v in await gate.visible(caller, versions[start : start + CHUNK]):
                yield position, v


async def everything_page(store: Store, gate: Gate, caller: Caller, query: EverythingQuery
                          ) -> tuple[list[ResourceVersion], str | None]:
    """One page of visible resources and the cursor of the next (None: this is the last page)."""
    page: list[ResourceVersion] = []
    last: tuple[int, str] | None = None
    more = False
    async for position, version in everything(store, gate, caller, query):
        if len(page) == query.count:
            more = True
            break
        page.append(version)
        last = (position, version.id)
    return page, encode_cursor(*last) if more and last is not None else None
