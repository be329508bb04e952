"""Search through the gate for Care Partner callers (ACCESS.md §B): what they cannot see is absent.

- **Paging before filtering would leak** (short pages, totals): pages are filled from the store's own keyset
  order, in batches no larger than what is still missing, until ``_count + 1`` visible matches are found. The
  next link's cursor is the store cursor *after the last visible match returned* — never a withheld row's keys.
- **Totals** count visible matches only: ``_total=accurate|estimate`` and ``_summary=count`` count them all
  through the gate; without ``_total`` a Care Partner gets ``Bundle.total`` only when everything fits on the
  first page (a bounded count would have to judge up to a thousand resources per page).
- **Chains and ``_has``** match through visible resources only: each chain's inner matches (and each ``_has``
  source) are found, judged by the gate, and the filter is rewritten to the visible ones (a chain becomes a
  reference filter on the visible targets; a ``_has`` keeps its join with an ``_id`` filter on the visible
  sources). A join with no visible resource matches nothing. ``_list`` likewise keeps only visible Lists.
- **Includes** (``_include``, ``_revinclude``, ``:iterate``) are computed here, from visible resources only, and
  each round is judged before the next iterates from it.

Administrators never come here: their search is the store's.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace

from fhir_server.consent.compartment import reference_params, references
from fhir_server.consent.gate import Gate
from fhir_server.fhir import jsonio
from fhir_server.fhir.outcome import FHIRError
from fhir_server.fhir.search.ast import (
    Filter,
    Has,
    Include,
    ReferenceValue,
    SearchPage,
    SearchQuery,
    TokenValue,
    includes_truncated,
)
from fhir_server.security.caller import Caller
from fhir_server.store.base import HistoryPage, HistoryQuery, ResourceVersion, Store, Transaction

Source = Store | Transaction
BATCH = 1000  # rows per store page when every match must be judged (joins, totals)
MAX_JOIN = 5000  # visible resources a chain or _has may join through
MAX_INCLUDES = 1000
MAX_ROUNDS = 4


class _Nothing(Exception):
    """A join through no visible resource: the whole search matches nothing."""


async def _read_many(source: Source, refs: list[tuple[str, str]]) -> list[ResourceVersion]:
    if hasattr(source, "read_many"):
        return await source.read_many(refs)  # type: ignore[no-any-return]
    out = []
    for t, i in refs:
        v = await source.current(t, i)
        if v is not None and not v.deleted:
            out.append(v)
    return out


async def _visible_ids(source: Source, gate: Gate, caller: Caller, rtype: str, inner: Filter | Has) -> list[str]:
    query = SearchQuery(rtype, count=BATCH, filters=(inner,), total="none")
    ids: list[str] = []
    while True:
        page = await source.search(query)
        ids += [v.id for v in await gate.visible(caller, page.matches)]
        if len(ids) > MAX_JOIN:
            raise FHIRError(400, "too-costly", f"a chained or _has search joins more than {MAX_JOIN} {rtype} "
                                               "resources; narrow the inner criteria")
        if not page.next_cursor:
            return ids
        query = query.with_cursor(page.next_cursor)


async def _rewrite(source: Source, gate: Gate, caller: Caller, f: Filter | Has, rtype: str | None
                   ) -> Filter | Has:
    """The filter with every join replaced by its visible resources; raises :class:`_Nothing`."""
    if isinstance(f, Has):
        inner = await _rewrite(source, gate, caller, f.inner, f.source_type)
        ids = await _visible_ids(source, gate, caller, f.source_type, inner)
        if not ids:
            raise _Nothing
        return Has(f.source_type, f.reference_param, Filter("_id", "special", tuple(TokenValue(None, i) for i in ids)))
    if f.chain is not None:
        values: list[ReferenceValue] = []
        for target in f.chain_types:
            try:
                inner = await _rewrite(source, gate, caller, f.chain, target)
            except _Nothing:
                continue
            values += [ReferenceValue(target, i) for i in await _visible_ids(source, gate, caller, target, inner)]
        if not values:
            raise _Nothing
        return Filter(f.name, "reference", tuple(values), resource_type=f.resource_type)
    if f.name == "_list":
        ids = [v.code for v in f.values if isinstance(v, TokenValue) and v.code]
        lists = await gate.visible(caller, await _read_many(source, [("List", i) for i in ids]))
        if not lists:
            raise _Nothing
        return replace(f, values=tuple(TokenValue(None, v.id) for v in lists))
    return f


Fetch = Callable[[int, str | None], Awaitable[tuple[list[ResourceVersion], str | None]]]
Judge = Callable[[list[ResourceVersion]], Awaitable[list[ResourceVersion]]]


async def fill_page(fetch: Fetch, judge: Judge, count: int, cursor: str | None
                    ) -> tuple[list[ResourceVersion], str | None]:
    """``count`` visible items from ``cursor`` on, and the store cursor right after the last one (None when no
    visible item follows). ``fetch(n, cursor)`` reads at most ``n`` rows of the store's keyset order; batches are
    never larger than what is still missing, so the page never overshoots and no withheld row's keys end up in
    a cursor."""
    want = count + 1
    found: list[tuple[ResourceVersion, str | None, int, str | None]] = []  # (item, batch cursor, index, next)
    while len(found) < want:
        rows, after = await fetch(want - len(found), cursor)
        shown = {id(v) for v in await judge(rows)}
        for i, v in enumerate(rows):
            if id(v) in shown:
                found.append((v, cursor, i, after if i == len(rows) - 1 else None))
        if not after:
            break
        cursor = after
    if len(found) < want:
        return [f[0] for f in found], None
    _, start, index, after = found[count - 1]
    if after is None:  # the last item shown is inside its batch: ask the store for the cursor right after it
        _, after = await fetch(index + 1, start)
    return [f[0] for f in found[:count]], after


async def _matches(source: Source, gate: Gate, caller: Caller, query: SearchQuery
                   ) -> tuple[list[ResourceVersion], str | None]:
    """One page of visible matches and the cursor after its last one (None: no visible match follows)."""
    async def fetch(n: int, cursor: str | None) -> tuple[list[ResourceVersion], str | None]:
        page = await source.search(replace(query, count=n, cursor=cursor))
        return page.matches, page.next_cursor

    async def judge(rows: list[ResourceVersion]) -> list[ResourceVersion]:
        return await gate.visible(caller, rows)

    return await fill_page(fetch, judge, query.count, query.cursor)


async def _count(source: Source, gate: Gate, caller: Caller, query: SearchQuery) -> int:
    q = replace(query, count=BATCH, cursor=None, includes=(), revincludes=(), total="none", sort=(),
                summary=None, elements=())
    n = 0
    while True:
        page = await source.search(q)
        n += len(await gate.visible(caller, page.matches))
        if not page.next_cursor:
            return n
        q = q.with_cursor(page.next_cursor)


def _targets(inc: Include, frontier: Sequence[ResourceVersion]) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for v in frontier:
        if inc.source_type not in (None, v.resource_type) or v.body is None:
            continue
        body = jsonio.loads(v.body)
        for param in [inc.param] if inc.param else reference_params(v.resource_type):
            out += [r for r in references(body, param) if inc.target_type in (None, r[0])]
    return out


async def _reverse(source: Source, inc: Include, frontier: Sequence[ResourceVersion]) -> list[ResourceVersion]:
    if inc.source_type is None or inc.param is None:
        return []
    values = tuple(ReferenceValue(v.resource_type, v.id) for v in frontier
                   if inc.target_type in (None, v.resource_type))
    if not values:
        return []
    query = SearchQuery(inc.source_type, count=BATCH,
                        filters=(Filter(inc.param, "reference", values, resource_type=inc.source_type),),
                        total="none")
    return (await source.search(query)).matches


async def _includes(source: Source, gate: Gate, caller: Caller, query: SearchQuery,
                    matches: list[ResourceVersion]) -> tuple[list[ResourceVersion], bool]:
    if not query.includes and not query.revincludes:
        return [], False
    seen = {(v.resource_type, v.id) for v in matches}
    out: list[ResourceVersion] = []
    frontier = matches
    for round_ in range(MAX_ROUNDS):
        fresh: list[ResourceVersion] = []
        targets = [t for inc in query.includes if round_ == 0 or inc.iterate for t in _targets(inc, frontier)]
        targets = [t for t in dict.fromkeys(targets) if t not in seen]
        if targets:
            fresh += await _read_many(source, targets)
        for inc in query.revincludes:
            if round_ == 0 or inc.iterate:
                fresh += await _reverse(source, inc, frontier)
        unique: dict[tuple[str, str], ResourceVersion] = {}
        for v in fresh:
            if (v.resource_type, v.id) not in seen:
                unique.setdefault((v.resource_type, v.id), v)
        new = await gate.visible(caller, list(unique.values()))
        seen.update((v.resource_type, v.id) for v in new)
        out += new
        if len(out) > MAX_INCLUDES:
            return out[:MAX_INCLUDES], True
        if not new:
            return out, False
        frontier = new
    return out, any(inc.iterate for inc in (*query.includes, *query.revincludes))


async def gated_search(source: Source, gate: Gate, caller: Caller, query: SearchQuery) -> SearchPage:
    """A page of ``query`` as ``caller`` may see it (administrators: the store's page)."""
    if caller.is_administrator:
        return await source.search(query)
    try:
        filters = tuple([await _rewrite(source, gate, caller, f, query.resource_type) for f in query.filters])
    except _Nothing:
        wanted = query.total_wanted()
        return SearchPage(matches=[], total=0 if wanted is not False else None)
    base = replace(query, filters=filters, includes=(), revincludes=(), total="none")
    wanted = query.total_wanted()
    total = await _count(source, gate, caller, base) if wanted else None
    if query.summary == "count" or query.count == 0:
        return SearchPage(matches=[], total=total)
    matches, next_cursor = await _matches(source, gate, caller, base)
    if wanted is None and next_cursor is None and query.cursor is None:
        total = len(matches)
    included, truncated = await _includes(source, gate, caller, query, matches)
    return SearchPage(matches=matches, includes=included, next_cursor=next_cursor, total=total,
                      warnings=[includes_truncated(MAX_INCLUDES)] if truncated else [])


async def gated_history(store: Store, gate: Gate, caller: Caller, query: HistoryQuery) -> HistoryPage:
    """A history page (instance, type or system) as ``caller`` may see it: versions of resources the caller may
    see now, filled before paging like search; the total only when everything is on the first page."""
    if caller.is_administrator:
        return await store.history(query)

    async def fetch(n: int, cursor: str | None) -> tuple[list[ResourceVersion], str | None]:
        page = await store.history(replace(query, count=n, cursor=cursor, want_total=False))
        return page.versions, page.next_cursor

    async def judge(rows: list[ResourceVersion]) -> list[ResourceVersion]:
        return await gate.visible_versions(caller, rows)

    versions, after = await fill_page(fetch, judge, query.count, query.cursor)
    total = len(versions) if after is None and query.cursor is None else None
    return HistoryPage(gate.disclose_all(caller, versions), after, total)
