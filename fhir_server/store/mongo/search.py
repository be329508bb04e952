"""Run a compiled search: resolve sub-queries, fetch one keyset page, count, add _include/_revinclude.

Chains (``patient.name=x``), ``_has`` and ``_list`` are two-step: first the ids of the other resources are
found (each with an index-backed query of its own), then the outer query matches them with ``$in`` on the
reference index. MongoDB has no join an index can drive across collections-with-arrays, and ``$lookup``
would scan; two steps keep both halves on indexes. Sub-queries are capped so one request cannot pull a
million ids into memory.
"""

from __future__ import annotations

import json
from typing import Any

from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase

from fhir_server.fhir.outcome import FHIRError
from fhir_server.fhir.search.ast import (
    CHEAP_TOTAL,
    Filter,
    Has,
    Include,
    SearchPage,
    SearchQuery,
    includes_truncated,
)
from fhir_server.store.mongo import names as n
from fhir_server.store.mongo.documents import VERSION_FIELDS, version_from_document
from fhir_server.store.mongo.filters import (
    TERMINOLOGY_MODIFIERS,
    Doc,
    Resolved,
    compile_filter,
    compile_query,
)
from fhir_server.store.mongo.paging import after, cursor_values, decode_cursor, encode_cursor, sort_spec
from fhir_server.store.mongo.terminology import code_pairs

MAX_SUBQUERY_IDS = 10_000
MAX_INCLUDES = 1_000
MAX_ITERATE = 3
Session = AsyncClientSession | None


class _Runner:
    def __init__(self, db: AsyncDatabase[Doc], session: Session) -> None:
        self.resources = db[n.RESOURCES]
        self.session = session

    async def find(self, filter: Doc, projection: Doc, limit: int = 0, sort: list[tuple[str, int]] | None = None,
                   ) -> list[Doc]:
        cursor = self.resources.find(filter, projection, session=self.session, limit=limit, sort=sort)
        return await cursor.to_list(None)

    # --- sub-queries ----------------------------------------------------------------------------------------

    async def resolve(self, nodes: tuple[Filter | Has, ...] | list[Filter | Has]) -> dict[Filter | Has, Any]:
        resolved: dict[Filter | Has, list[tuple[str, str]]] = {}
        for node in nodes:
            if isinstance(node, Has):
                resolved[node] = await self._has(node)
            elif node.name == "_list":
                resolved[node] = await self._list(node)
            elif node.chain is not None:
                resolved[node] = await self._chain(node)
            elif node.modifier in TERMINOLOGY_MODIFIERS:
                resolved[node] = await code_pairs(self.by_url, node)  # type: ignore[assignment]
        return resolved

    async def by_url(self, resource_type: str, url: str) -> dict[str, Any] | None:
        """The newest live ValueSet/CodeSystem with this canonical ``url`` (terminology modifiers)."""
        docs = await self.find({n.TYPE: resource_type, n.DELETED: False,
                                n.ix("uri"): {"$elemMatch": {"p": "url", "v": url}}},
                               {n.BODY: 1}, limit=1, sort=[(n.LU, -1)])
        return json.loads(docs[0][n.BODY]) if docs and docs[0].get(n.BODY) else None

    async def _matching(self, resource_type: str, node: Filter | Has, projection: Doc) -> list[Doc]:
        inner = compile_filter(node, await self.resolve([node] if _needs_resolving(node) else []))
        docs = await self.find({n.TYPE: resource_type, n.DELETED: False, "$and": [inner]}, projection,
                               limit=MAX_SUBQUERY_IDS + 1)
        if len(docs) > MAX_SUBQUERY_IDS:
            raise FHIRError(400, "too-costly", f"a chained or _has search matched more than {MAX_SUBQUERY_IDS} "
                                               f"{resource_type} resources; narrow the inner criteria")
        return docs

    async def _chain(self, f: Filter) -> list[tuple[str, str]]:
        assert f.chain is not None
        pairs: list[tuple[str, str]] = []
        for target in f.chain_types:
            pairs += [(target, d[n.RID]) for d in await self._matching(target, f.chain, {n.RID: 1})]
        return pairs

    async def _has(self, h: Has) -> list[tuple[str, str]]:
        docs = await self._matching(h.source_type, h.inner, {n.ix("reference"): 1})
        return [(r["t"], r["i"]) for d in docs for r in d[n.IX]["reference"]
                if r["p"] == h.reference_param and r["t"] and r["i"]]

    async def _list(self, f: Filter) -> list[tuple[str, str]]:
        ids = [getattr(v, "code", None) for v in f.values]
        docs = await self.find({n.TYPE: "List", n.RID: {"$in": ids}, n.DELETED: False}, {n.ix("reference"): 1})
        return [(r["t"], r["i"]) for d in docs for r in d[n.IX]["reference"]
                if r["p"] == "item" and r["t"] and r["i"]]

    # --- includes -------------------------------------------------------------------------------------------

    async def cheap_total(self, filt: Doc) -> int | None:
        """The total when fewer than CHEAP_TOTAL documents match (a count with a limit), else None."""
        n = await self.resources.count_documents(filt, limit=CHEAP_TOTAL, session=self.session)
        return n if n < CHEAP_TOTAL else None

    async def includes(self, query: SearchQuery, matches: list[Doc]) -> tuple[list[Doc], bool]:
        """Included documents, and whether the limits (resources, :iterate depth) cut them short."""
        seen = {d[n.ID] for d in matches}
        found: list[Doc] = []
        frontier = matches
        for depth in range(MAX_ITERATE + 2):
            wanted = [inc for inc in query.includes if depth == 0 or inc.iterate]
            wanted_rev = [inc for inc in query.revincludes if depth == 0 or inc.iterate]
            if not frontier or not (wanted or wanted_rev):
                break
            keys = {key for inc in wanted for d in frontier for key in _targets(inc, d)}
            new = await self.find({n.ID: {"$in": sorted(keys - seen)}, n.DELETED: False}, _WITH_REFS) \
                if keys - seen else []
            for inc in wanted_rev:
                new += await self.find(_revinclude_filter(inc, frontier), _WITH_REFS, limit=MAX_INCLUDES + 1)
            frontier = [d for d in new if d[n.ID] not in seen]
            if depth > MAX_ITERATE:  # a round past the limit, only to learn whether anything was left out
                return found, bool(frontier)
            seen.update(d[n.ID] for d in frontier)
            found += frontier
            if len(found) > MAX_INCLUDES:
                return found[:MAX_INCLUDES], True
        return found, False


_WITH_REFS: Doc = {**VERSION_FIELDS, n.ix("reference"): 1}


def _needs_resolving(node: Filter | Has) -> bool:
    return (isinstance(node, Has) or node.name == "_list" or node.chain is not None
            or (node.type == "token" and node.modifier in TERMINOLOGY_MODIFIERS))


def _targets(inc: Include, doc: Doc) -> list[str]:
    if inc.source_type is not None and doc[n.TYPE] != inc.source_type:
        return []
    return [n.resource_key(r["t"], r["i"]) for r in doc.get(n.IX, {}).get("reference", [])
            if r["t"] and r["i"] and (inc.param is None or r["p"] == inc.param)
            and (inc.target_type is None or r["t"] == inc.target_type)]


def _revinclude_filter(inc: Include, frontier: list[Doc]) -> Doc:
    by_type: dict[str, list[str]] = {}
    for d in frontier:
        if inc.target_type is None or d[n.TYPE] == inc.target_type:
            by_type.setdefault(d[n.TYPE], []).append(d[n.RID])
    element: list[Doc] = []
    for rtype, ids in sorted(by_type.items()):
        match: Doc = {"t": rtype, "i": {"$in": ids}}
        if inc.param is not None:
            match["p"] = inc.param
        element.append({n.ix("reference"): {"$elemMatch": match}})
    filt: Doc = {n.DELETED: False, "$or": element or [{n.ID: {"$in": []}}]}
    if inc.source_type is not None:
        filt[n.TYPE] = inc.source_type
    return filt


async def run_search(db: AsyncDatabase[Doc], query: SearchQuery, session: Session = None) -> SearchPage:
    runner = _Runner(db, session)
    resolved: Resolved = await runner.resolve([f for f in query.filters if _needs_resolving(f)])
    filt = compile_query(query, resolved)
    spec, computed = sort_spec(query.sort)
    wanted = query.total_wanted()
    total = await runner.resources.count_documents(filt, session=session) if wanted else None
    if query.count == 0 or query.summary == "count":
        return SearchPage([], [], None, total if wanted is not None else await runner.cheap_total(filt))
    keyset = after(spec, decode_cursor(query.cursor, spec)) if query.cursor else None
    want_refs = bool(query.includes or query.revincludes)
    projection = {**(_WITH_REFS if want_refs else VERSION_FIELDS), **{f: 1 for f, _ in spec}}
    if computed:  # _sort on a parameter: computed keys (missing values last), so an aggregation
        pipeline: list[Doc] = [{"$match": filt}, {"$addFields": computed}]
        if keyset is not None:
            pipeline.append({"$match": keyset})
        pipeline += [{"$sort": dict(spec)}, {"$limit": query.count + 1}, {"$project": projection}]
        docs = await (await runner.resources.aggregate(pipeline, session=session)).to_list(None)
    else:
        page_filter = filt if keyset is None else {"$and": [filt, keyset]}
        docs = await runner.find(page_filter, projection, limit=query.count + 1, sort=spec)
    more = len(docs) > query.count
    docs = docs[: query.count]
    if wanted is None:  # the server's choice: everything is on this first page, or a bounded count
        total = len(docs) if not more and query.cursor is None else await runner.cheap_total(filt)
    included, truncated = await runner.includes(query, docs) if want_refs and docs else ([], False)
    return SearchPage(
        matches=[version_from_document(d, "PUT") for d in docs],
        includes=[version_from_document(d, "PUT") for d in included],
        next_cursor=encode_cursor(cursor_values(docs[-1], spec)) if more and docs else None,
        total=total,
        warnings=[includes_truncated(MAX_INCLUDES)] if truncated else [],
    )
