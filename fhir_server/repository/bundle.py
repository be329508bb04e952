"""Execute transaction and batch Bundles (one processor for both, STYLE.md pattern 8).

A transaction runs in ONE store transaction: every entry succeeds or nothing is left behind. A batch runs each
entry in its own store transaction and reports failures per entry. Steps: plan (pure, ``fhir.bundle.plan``) →
resolve conditional creates/updates and conditional references → rewrite temporary ids → execute in the spec's
order → check local references once everything is written → build the response in request order.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from fhir_server.fhir import instant, jsonio
from fhir_server.fhir.bundle import plan as planner
from fhir_server.fhir.bundle.plan import PlannedEntry
from fhir_server.fhir.outcome import (
    BadRequest,
    Conflict,
    FHIRError,
    Gone,
    NotFound,
    PreconditionFailed,
    information,
)
from fhir_server.repository import conditional, patch
from fhir_server.repository import resources as repo
from fhir_server.repository.references import local_target, reference_strings
from fhir_server.settings import Settings
from fhir_server.store.base import RaceLost, ResourceVersion, Store, Transaction, rerun_on_race

if TYPE_CHECKING:
    from fhir_server.consent.gate import Gate
    from fhir_server.security.caller import Caller


@dataclass
class EntryResult:
    """One entry's outcome: ``body`` is what a response may embed (stored bytes, or a Bundle for searches);
    ``written`` is the resource a write stored (its references are checked at the end)."""

    status: str
    version: ResourceVersion | None = None
    body: bytes | dict[str, Any] | None = None
    outcome: dict[str, Any] | None = None
    written: dict[str, Any] | None = None
    references: list[str] | None = None  # the written resource's reference strings, when known beforehand


def _written(status: str, version: ResourceVersion, resource: dict[str, Any] | None) -> EntryResult:
    return EntryResult(status, version, version.body, written=resource)


def _etag_version(value: str | None, what: str) -> int | None:
    if value is None:
        return None
    text = value.strip().removeprefix("W/").strip('"')
    if not text.isdigit():
        raise BadRequest(f"{what} must be a version ETag like W/\"3\", not {value!r}")
    return int(text)


def _at(index: int, exc: FHIRError) -> FHIRError:
    """The entry's error, except a lost race: that one must stay recognisable, the unit is run again."""
    return exc if isinstance(exc, RaceLost) else planner.entry_error(index, exc)


#: How often a transaction (or a batch entry) that lost a race is run: conditional creates of N concurrent
#: identical Bundles make N-1 of them lose once on MongoDB, and each new round has a winner (N updaters of one
#: resource need up to N rounds).
RACE_ATTEMPTS = 8


class BundleProcessor:
    """``gate``/``caller``: a Care Partner's GET entries, conditional matches and writes go through the consent
    gate (withheld = absent); without them (administrators, the server's own work) nothing is filtered.

    ``attempts``: how often a unit that lost a race is run (1: the caller re-plans itself, like the ASCMI
    intake). ``must_create``: entry indexes whose ``ifNoneExist`` must find nothing — a match means a concurrent
    request created it first, and the transaction fails with :class:`RaceLost` instead of answering 200.
    """

    def __init__(self, store: Store, settings: Settings, base: str, *, gate: Gate | None = None,
                 caller: Caller | None = None, attempts: int = RACE_ATTEMPTS,
                 must_create: Collection[int] = ()) -> None:
        self.store = store
        self.settings = settings
        self.base = base
        self.gate = gate
        self.caller = caller
        self.attempts = max(1, attempts)
        self.must_create = frozenset(must_create)

    @property
    def _partner(self) -> bool:
        return self.gate is not None and self.caller is not None and not self.caller.is_administrator

    async def _guard(self, current: ResourceVersion | None, rtype: str, id: str, *, delete: bool = False,
                     assigned: bool = False) -> None:
        if self._partner:
            assert self.gate is not None and self.caller is not None
            await self.gate.guard_write(self.caller, current, rtype, id, delete=delete, assigned=assigned)

    def _body(self, version: ResourceVersion) -> bytes | None:
        if self._partner and version.body is not None:
            assert self.gate is not None and self.caller is not None
            return self.gate.disclosed(self.caller, version)
        return version.body

    # -- entry points -------------------------------------------------------------------------------------

    async def transaction(self, bundle: dict[str, Any], prefer_return: str) -> dict[str, Any]:
        """Run the Bundle as one store transaction; one that lost a race (a concurrent request claimed the same
        ``ifNoneExist`` or wrote the same resource first) left nothing behind and is planned and run again from
        the Bundle, so it sees the winner's writes (planning never changes the Bundle itself)."""
        return await rerun_on_race(lambda: self._transaction(bundle, prefer_return), self.attempts)

    async def _transaction(self, bundle: dict[str, Any], prefer_return: str) -> dict[str, Any]:
        entries = planner.plan(bundle, self.settings.max_bundle_entries, repo.new_id)
        for e in entries:
            self._check_resource(e)
        rewritten_early = self._prepare(entries)
        async with self.store.transaction() as tx:
            mapping = await self._resolve_targets(tx, entries)
            planner.check_duplicates(entries)
            for e in entries:
                if e.resource is not None:
                    if rewritten_early:
                        found = e.extra["found"]
                    else:
                        found = planner.reference_values(e.resource)  # one walk: are the others needed?
                        rewritten = planner.rewrite_references(e.resource, mapping, found)
                        if rewritten is not e.resource:
                            e.resource, found = rewritten, planner.reference_values(rewritten)
                    await self._resolve_conditional_references(tx, e, found)
            results: dict[int, EntryResult] = {}
            for e in planner.execution_order(entries):
                try:
                    results[e.index] = await self._execute(tx, e)
                except FHIRError as exc:
                    raise _at(e.index, exc) from None
            if self.settings.check_references:
                await self._check_written_references(tx, entries, results)
        return self._response("transaction-response", entries, results, prefer_return)

    async def batch(self, bundle: dict[str, Any], prefer_return: str) -> dict[str, Any]:
        raw_entries = bundle.get("entry") or []
        if not isinstance(raw_entries, list):
            raise BadRequest("Bundle.entry must be an array", ["Bundle.entry"], code="structure")
        if len(raw_entries) > self.settings.max_bundle_entries:
            planner.plan(bundle, self.settings.max_bundle_entries, repo.new_id)  # raises 413
        results: dict[int, EntryResult] = {}
        planned: list[PlannedEntry | None] = []
        for i, raw in enumerate(raw_entries):
            try:
                e = planner.plan({"entry": [raw]}, 1, repo.new_id)[0]
                e.index = i
                planned.append(e)
            except FHIRError as exc:
                planned.append(None)
                results[i] = self._failure(planner.entry_error(i, exc))
        order = planner.execution_order([e for e in planned if e is not None])
        for e in order:
            try:
                self._check_resource(e)
                await self._batch_entry(e, results)
            except FHIRError as exc:
                results[e.index] = self._failure(planner.entry_error(e.index, exc))
        return self._response("batch-response", planned, results, prefer_return)

    async def _batch_entry(self, e: PlannedEntry, results: dict[int, EntryResult]) -> None:
        """One batch entry in its own transaction, run again after a lost race (see :meth:`transaction`)."""
        resource, assigned, target = e.resource, e.assigned_id, e.target

        async def once() -> None:
            # resolving decides these again: a lost run may have set them from what it saw
            e.resource, e.assigned_id, e.target = resource, assigned, target
            e.extra.clear()
            results.pop(e.index, None)
            async with self.store.transaction() as tx:
                await self._resolve_targets(tx, [e])
                if e.resource is not None:
                    await self._resolve_conditional_references(tx, e)
                results[e.index] = await self._execute(tx, e)
                if self.settings.check_references:
                    await self._check_written_references(tx, [e], results)

        await rerun_on_race(once, self.attempts)

    # -- preparation ------------------------------------------------------------------------------------------

    def _check_resource(self, e: PlannedEntry) -> None:
        if e.method not in ("POST", "PUT") or e.resource is None:
            return
        rtype = e.target.resource_type
        assert rtype is not None
        try:
            repo.check_body(e.resource, rtype, e.target.id if e.target.kind == "instance" else None)
        except FHIRError as exc:
            raise _at(e.index, exc) from None

    def _prepare(self, entries: list[PlannedEntry]) -> bool:
        """The work that needs no store, done before the write lock (issue #16): while one Bundle holds the lock
        (its inserts, its commit's fsync in a thread), the next one is rewritten and indexed here.

        Only when no entry's id depends on the store (conditional create, conditional update/patch/delete):
        then the fullUrl → id map is known now, so temporary ids are rewritten here, and a plain create without
        conditional references gets its index rows and reference strings (:func:`repo.prepare`). Returns
        whether references were rewritten (``extra["found"]`` holds each resource's reference values).
        """
        if any(e.if_none_exist or e.target.kind == "search" for e in entries):
            return False
        mapping = planner.id_map(entries, self.base)
        for e in entries:
            if e.resource is None:
                continue
            found = planner.reference_values(e.resource)
            rewritten = planner.rewrite_references(e.resource, mapping, found)
            if rewritten is not e.resource:
                e.resource, found = rewritten, planner.reference_values(rewritten)
            e.extra["found"] = found
            if e.method == "POST" and e.assigned_id and not any("?" in v for v in found[0]):
                try:
                    e.extra["prepared"] = repo.prepare(e.resource, e.assigned_id)
                except FHIRError as exc:
                    raise _at(e.index, exc) from None
        return True

    async def _resolve_targets(self, tx: Transaction, entries: list[PlannedEntry]) -> dict[str, str]:
        """Conditional creates and updates decide their ids before any reference is rewritten."""
        for e in entries:
            try:
                if e.method == "POST" and e.if_none_exist:
                    assert e.target.resource_type is not None
                    found = await conditional.find_one_for_create(tx, e.target.resource_type, e.if_none_exist,
                                                                  gate=self.gate, caller=self.caller)
                    if found is not None and e.index in self.must_create:
                        raise RaceLost(f"{found.reference} matching {e.if_none_exist!r} was created meanwhile")
                    if found is not None:
                        e.assigned_id = found.id
                        e.extra["existing"] = found
                elif e.method in ("PUT", "PATCH", "DELETE") and e.target.kind == "search":
                    await self._resolve_conditional_target(tx, e)
            except FHIRError as exc:
                raise _at(e.index, exc) from None
        return planner.id_map(entries, self.base)

    async def _resolve_conditional_target(self, tx: Transaction, e: PlannedEntry) -> None:
        rtype = e.target.resource_type
        assert rtype is not None
        limit = 2 if e.method != "DELETE" else 1000
        found = await conditional.find(tx, rtype, e.target.query, limit, gate=self.gate, caller=self.caller)
        if e.method == "DELETE":
            e.extra["matches"] = found
            return
        if len(found) > 1:
            raise PreconditionFailed(f"{e.method} {e.url} matches more than one resource", code="multiple-matches")
        if found:
            e.target = planner.Target("instance", rtype, found[0].id)
            if e.resource is not None and e.method == "PUT" and e.resource.get("id") not in (None, found[0].id):
                raise BadRequest(f"the resource id {e.resource['id']!r} differs from the matched {rtype}/{found[0].id}")
        elif e.method == "PATCH":
            raise NotFound(f"PATCH {e.url} matches no resource")
        else:
            new_id = e.resource.get("id") if e.resource else None
            if new_id:
                current = await tx.current(rtype, new_id)
                await self._guard(current, rtype, new_id)
                if current is not None and not current.deleted:
                    raise Conflict(f"{e.url} matches nothing, yet the resource's id names the existing "
                                   f"{rtype}/{new_id}, which must not be overwritten")
            if not new_id:
                e.assigned_id = new_id = repo.new_id()  # the server's own id: a Care Partner may create with it
            await tx.claim(conditional.claim_key(rtype, e.target.query))  # a create under a condition
            e.target = planner.Target("instance", rtype, new_id)
        if e.resource is not None and e.method == "PUT":
            e.resource = {**e.resource, "id": e.target.id}

    async def _resolve_conditional_references(self, tx: Transaction, e: PlannedEntry,
                                              found: tuple[list[str], bool] | None = None) -> None:
        assert e.resource is not None
        found_refs = planner.conditional_references(e.resource, str(e.resource.get("resourceType", "")), found)
        if not found_refs:
            return
        resolved: dict[str, str] = {}
        for where, ref in found_refs:
            rtype, _, query = ref.partition("?")
            try:
                matches = await conditional.find(tx, rtype, query, gate=self.gate, caller=self.caller)
            except FHIRError as exc:
                raise _at(e.index, exc) from None
            if len(matches) != 1:
                problem = "no resource" if not matches else "more than one resource"
                raise planner.entry_error(e.index, PreconditionFailed(
                    f"the conditional reference {ref!r} at {where} matches {problem}", [where],
                    code="not-found" if not matches else "multiple-matches"))
            resolved[ref] = matches[0].reference
        e.resource = planner.replace_references(e.resource, resolved)

    # -- execution --------------------------------------------------------------------------------------------

    async def _execute(self, tx: Transaction, e: PlannedEntry) -> EntryResult:
        t = e.target
        if e.method == "DELETE":
            return await self._delete(tx, e)
        if e.method == "POST":
            if t.kind != "type":
                raise BadRequest(f"POST {e.url} is not supported in a bundle")
            existing = e.extra.get("existing")
            if existing is not None:
                return EntryResult("200 OK", existing, self._body(existing))
            assert e.resource is not None
            prepared = e.extra.get("prepared")
            result = await repo.create(tx, e.resource, id=e.assigned_id, check_refs=False,
                                       prepared=prepared if prepared is not None and prepared.source is e.resource
                                       else None)
            written = _written("201 Created", result.version, result.resource)
            if prepared is not None and prepared.source is e.resource:
                written.references = prepared.references
            return written
        if e.method == "PUT":
            assert e.resource is not None and t.resource_type and t.id
            current = await tx.current(t.resource_type, t.id)
            await self._guard(current, t.resource_type, t.id, assigned=e.assigned_id == t.id)
            if e.if_none_match and e.if_none_match.strip() == "*":
                if current is not None and not current.deleted:
                    raise PreconditionFailed(f"{t.resource_type}/{t.id} exists (If-None-Match: *)")
            result = await repo.update(tx, t.resource_type, t.id, e.resource, check_refs=False,
                                       if_match=_etag_version(e.if_match, "ifMatch"))
            return _written("201 Created" if result.created else "200 OK", result.version, result.resource)
        if e.method == "PATCH":
            assert e.resource is not None and t.resource_type and t.id
            await self._guard(await tx.current(t.resource_type, t.id), t.resource_type, t.id, delete=True)
            current = repo.require_live(await tx.current(t.resource_type, t.id), t.resource_type, t.id)
            assert current.body is not None
            patched = patch.apply(jsonio.loads(current.body), patch.patch_from_binary(e.resource))
            repo.check_body(patched, t.resource_type, t.id)
            result = await repo.update(tx, t.resource_type, t.id, patched, check_refs=False, method="PATCH",
                                       if_match=_etag_version(e.if_match, "ifMatch"))
            return _written("200 OK", result.version, result.resource)
        return await self._get(tx, e)

    async def _delete(self, tx: Transaction, e: PlannedEntry) -> EntryResult:
        t = e.target
        if t.kind == "search":
            for match in e.extra.get("matches", []):
                await repo.delete(tx, match.resource_type, match.id)
            return EntryResult("204 No Content")
        if t.kind != "instance":
            raise BadRequest(f"DELETE {e.url} must address one resource or a search")
        assert t.resource_type and t.id
        await self._guard(await tx.current(t.resource_type, t.id), t.resource_type, t.id, delete=True)
        version = await repo.delete(tx, t.resource_type, t.id, if_match=_etag_version(e.if_match, "ifMatch"))
        return EntryResult("204 No Content", version)

    async def _get(self, tx: Transaction, e: PlannedEntry) -> EntryResult:
        t = e.target
        if t.kind == "instance":
            assert t.resource_type and t.id
            v = await tx.current(t.resource_type, t.id)
            if v is not None and self._partner:
                assert self.gate is not None and self.caller is not None
                v = v if await self.gate.can_see(self.caller, v) else None
            v = repo.require_live(v, t.resource_type, t.id)
            if e.if_none_match and e.if_none_match.strip() in (f'W/"{v.version_id}"', "*"):
                return EntryResult("304 Not Modified", v)
            if e.if_modified_since:
                since = instant.parse_datetime(e.if_modified_since) or instant.parse_http_date(e.if_modified_since)
                modified = instant.parse_datetime(v.last_updated)
                if since and modified and modified.replace(microsecond=0) <= since:
                    return EntryResult("304 Not Modified", v)
            return EntryResult("200 OK", v, self._body(v))
        if t.kind == "vread":
            assert t.resource_type and t.id and t.version
            found = None
            if t.version.isdigit():
                # the current version may have been written by this transaction: only tx sees it
                current = await tx.current(t.resource_type, t.id)
                found = current if current is not None and current.version_id == int(t.version) \
                    else await self.store.vread(t.resource_type, t.id, int(t.version))
            if found is not None and self._partner:
                assert self.gate is not None and self.caller is not None
                found = found if await self.gate.visible_versions(self.caller, [found]) else None
            if found is None:
                raise NotFound(f"{t.resource_type}/{t.id} has no version {t.version}")
            if found.deleted:
                raise Gone(f"version {t.version} of {t.resource_type}/{t.id} is a deletion")
            return EntryResult("200 OK", found, self._body(found))
        if t.kind in ("search", "type"):
            assert t.resource_type
            from fhir_server.repository.search import search_bundle

            bundle = await search_bundle(tx, t.resource_type, t.query, self.base, self.settings, gate=self.gate,
                                         caller=self.caller)
            return EntryResult("200 OK", None, bundle)
        raise BadRequest(f"GET {e.url} is not supported inside a bundle", code="not-supported")

    async def _check_written_references(self, tx: Transaction, entries: list[PlannedEntry],
                                        results: dict[int, EntryResult]) -> None:
        checked: set[tuple[str, str]] = set()  # every write is done: a target found live stays live
        # what this request wrote is no secret to its writer; anything else must be visible to a Care Partner
        checked.update((str(r.written["resourceType"]), str(r.written["id"])) for r in results.values()
                       if r.written is not None and "id" in r.written)
        visible = self.gate.shows(self.caller) if self._partner and self.gate and self.caller else None
        written = [(e, r) for e in entries if (r := results.get(e.index)) is not None and r.written is not None]
        for _, r in written:
            if r.references is None:
                assert r.written is not None
                r.references = reference_strings(r.written)
        # every target of the Bundle in one read (one $in query on MongoDB instead of one per target)
        wanted = {t for _, r in written for ref in r.references or () if (t := local_target(ref, self.base))
                  and t not in checked}
        found = await tx.current_many(sorted(wanted))
        fetched: dict[tuple[str, str], ResourceVersion | None] = {t: found.get(t) for t in wanted}
        for e, result in written:
            assert result.written is not None
            try:
                await repo.check_references(tx, result.written, self.base, checked, visible, result.references,
                                            fetched)
            except FHIRError as exc:
                raise _at(e.index, exc) from None

    # -- response ---------------------------------------------------------------------------------------------

    @staticmethod
    def _failure(exc: FHIRError) -> EntryResult:
        return EntryResult(f"{exc.status} {_REASONS.get(exc.status, '')}".strip(), outcome=exc.outcome())

    def _response(self, kind: str, entries: list[PlannedEntry | None] | list[PlannedEntry],
                  results: dict[int, EntryResult], prefer_return: str) -> dict[str, Any]:
        out = []
        for i in range(len(entries)):
            r = results[i]
            entry: dict[str, Any] = {}
            response: dict[str, Any] = {"status": r.status}
            v = r.version
            if v is not None:
                entry["fullUrl"] = f"{self.base}/{v.resource_type}/{v.id}"
                if not v.deleted:
                    response["location"] = f"{v.resource_type}/{v.id}/_history/{v.version_id}"
                response["etag"] = f'W/"{v.version_id}"'
                response["lastModified"] = v.last_updated
            if r.outcome is not None:
                response["outcome"] = r.outcome
            planned = entries[i]
            method = planned.method if planned is not None else None
            is_read = method in ("GET", "HEAD")
            if r.body is not None and (method == "GET" or (not is_read and prefer_return == "representation")) \
                    and not r.status.startswith("304"):
                entry["resource"] = orjson.Fragment(r.body) if isinstance(r.body, bytes) else r.body
            elif prefer_return == "OperationOutcome" and r.outcome is None and not is_read:
                response["outcome"] = information(r.status)
            entry["response"] = response
            out.append(entry)
        bundle: dict[str, Any] = {"resourceType": "Bundle", "id": repo.new_id(), "type": kind,
                                  "meta": {"lastUpdated": instant.now()}}
        if out:
            bundle["entry"] = out
        return bundle


_REASONS = {400: "Bad Request", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed", 409: "Conflict",
            410: "Gone", 412: "Precondition Failed", 413: "Payload Too Large", 422: "Unprocessable Entity"}
