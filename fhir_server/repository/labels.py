"""Labels at ingest (ACCESS.md §C): the one call every create and update makes before index extraction.

:func:`apply` adds to ``meta.security`` the §2 labels that the resource's codes imply (the pure
:mod:`fhir_server.consent.sls` labeller), the labels of the resources it names as its diagnosis or reason
(``sls_elements.INHERIT_PATHS``), and ``42CFRPart2`` when its author, its ``meta.source`` or the writing
caller's Organization is a ``part2-program``. Client labels are kept; the server only adds.

The ValueSets are read from the store, not from files, so a deployment that updates
``ValueSet/ascmi-sls-<category>`` through the API changes labelling at once, on every worker: each write
transaction reads their versions once (one indexed search) and reuses a compiled labeller while the versions
are unchanged. Organization, ValueSet and reference look-ups are cached for the transaction's life.

The writing caller reaches this layer through :data:`WRITER` (set per request by ``api.writer``), so the write
paths — single, bundle, intake, import — need no extra argument; server work (start-up, import, relabel) has
none, which means no Organization of its own.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from fhir_server.consent import sls
from fhir_server.consent.sls_elements import AUTHOR_PATHS, INHERIT_PATHS, LABELLED_TYPES
from fhir_server.consent.tables import load_tables
from fhir_server.fhir import jsonio
from fhir_server.fhir.search.ast import SearchQuery
from fhir_server.repository.references import local_target
from fhir_server.security.caller import Caller
from fhir_server.store.base import Transaction

#: Resolves the caller of the current request (None outside a request). A callable, because the
#: authentication edge may decide the caller after the request's context was entered.
WRITER: ContextVar[Callable[[], Caller | None] | None] = ContextVar("label_writer", default=None)

PART2_PROGRAM = "part2-program"
CARE_PARTNER_TYPE = "/CodeSystem/care-partner-type"  # under any canonical base


def _category_labels() -> dict[str, tuple[sls.Coding, ...]]:
    out: dict[str, tuple[sls.Coding, ...]] = {}
    for cat in load_tables().categories.values():
        out[cat.code] = tuple({"system": lab.system, "code": lab.code, **({"display": lab.display}
                                                                           if lab.display else {})}
                              for lab in cat.labels)
    return out


CATEGORY_LABELS = _category_labels()
VALUE_SET_IDS = tuple(sls.VALUE_SET_PREFIX + c for c in CATEGORY_LABELS)
_VALUE_SET_ID_SET = frozenset(VALUE_SET_IDS)

_compiled: dict[tuple[Any, ...], sls.Labeller] = {}


@dataclass(slots=True)
class _TxState:
    labeller: sls.Labeller
    inferable: frozenset[tuple[str, str]]
    part2: dict[str, bool] = field(default_factory=dict)  # Organization id → is a part2-program
    targets: dict[tuple[str, str], tuple[sls.Coding, ...]] = field(default_factory=dict)


_states: weakref.WeakKeyDictionary[Any, _TxState] = weakref.WeakKeyDictionary()


def current_writer() -> Caller | None:
    resolve = WRITER.get()
    return resolve() if resolve is not None else None


async def labeller(tx: Transaction) -> sls.Labeller:
    """The labeller for the ValueSets ``tx`` sees (compiled again only when one of their versions changed)."""
    page = await tx.search(SearchQuery("ValueSet", ids=VALUE_SET_IDS, count=len(VALUE_SET_IDS) + 1,
                                       total="none"))
    versions = sorted(page.matches, key=lambda v: v.id)
    key = tuple((v.id, v.version_id, v.last_updated) for v in versions)  # unique across stores in a process
    found = _compiled.get(key)
    if found is None:
        bodies = [jsonio.loads(v.body) for v in versions if v.body is not None]
        found = sls.compile_value_sets(bodies, CATEGORY_LABELS, key)
        if len(_compiled) > 16:
            _compiled.clear()
        _compiled[key] = found
    return found


async def _state(tx: Transaction) -> _TxState:
    state = _states.get(tx)
    if state is None:
        lab = await labeller(tx)
        inferable = frozenset((c["system"], c["code"]) for labs in lab.category_labels for c in labs)
        state = _states[tx] = _TxState(lab, inferable)
    return state


async def _body(tx: Transaction, rtype: str, id: str) -> dict[str, Any] | None:
    version = await tx.current(rtype, id)
    if version is None or version.deleted or version.body is None:
        return None
    found = jsonio.loads(version.body)
    return found if isinstance(found, dict) else None


def _references(resource: dict[str, Any], paths: tuple[tuple[str, ...], ...]) -> list[str]:
    out: list[str] = []
    for path in paths:
        nodes = sls.nodes_at(resource, path)
        out.extend(n["reference"] for n in nodes if isinstance(n, dict) and isinstance(n.get("reference"), str))
    return out


def _organization_id(reference: str) -> str | None:
    """``Organization/7``, ``https://x/fhir/Organization/7/_history/2`` or ``…/Organization/7#frag`` → ``7``."""
    parts = reference.split("#", 1)[0].rstrip("/").split("/")
    for i in range(len(parts) - 2, -1, -1):
        if parts[i] == "Organization" and parts[i + 1]:
            return parts[i + 1]
    return None


async def _is_part2(tx: Transaction, state: _TxState, org_id: str) -> bool:
    known = state.part2.get(org_id)
    if known is None:
        org = await _body(tx, "Organization", org_id)
        known = org is not None and any(
            isinstance(c, dict) and c.get("code") == PART2_PROGRAM
            and str(c.get("system", "")).endswith(CARE_PARTNER_TYPE)
            for t in org.get("type") or () if isinstance(t, dict) for c in t.get("coding") or ())
        state.part2[org_id] = known
    return known


async def part2_source(tx: Transaction, resource: dict[str, Any], caller: Caller | None) -> bool:
    """Is the resource a record of a Part 2 program: its author (per type), ``meta.source`` or the writing
    caller's Organization an Organization of type ``part2-program``?"""
    rtype = str(resource.get("resourceType"))
    if rtype not in LABELLED_TYPES or (rtype == "DocumentReference" and sls.is_consent_document(resource)):
        return False
    state = await _state(tx)
    candidates = [r for r in _references(resource, AUTHOR_PATHS.get(rtype, ()))
                  if (t := local_target(r)) is not None and t[0] == "Organization"]
    meta = resource.get("meta")
    source = meta.get("source") if isinstance(meta, dict) else None
    if isinstance(source, str):
        candidates.append(source)
    if caller is not None and caller.organization:
        candidates.append(caller.organization)
    for ref in candidates:
        org_id = _organization_id(ref)
        if org_id is not None and await _is_part2(tx, state, org_id):
            return True
    return False


async def _inherited(tx: Transaction, state: _TxState, resource: dict[str, Any]) -> list[sls.Coding]:
    paths = INHERIT_PATHS.get(str(resource.get("resourceType")))
    if not paths:
        return []
    out: list[sls.Coding] = []
    for ref in _references(resource, paths):
        target = local_target(ref)
        if target is None:
            continue
        labels = state.targets.get(target)
        if labels is None:
            body = await _body(tx, *target)
            security = (body.get("meta") or {}).get("security") if body else None
            labels = tuple({k: s[k] for k in ("system", "code", "display") if k in s}
                           for s in security or () if isinstance(s, dict)
                           and (s.get("system"), s.get("code")) in state.inferable)
            state.targets[target] = labels
        out.extend(labels)
    return out


async def _kept(tx: Transaction, resource: dict[str, Any], replaces: str | None,
                caller: Caller | None) -> list[sls.Coding]:
    """A Care Partner may add labels, never remove them (ACCESS.md §B, writes): the labels of the version an
    update replaces stay. Administrators and the server's own work may remove labels."""
    if replaces is None or caller is None or caller.is_administrator:
        return []
    previous = await _body(tx, str(resource.get("resourceType")), replaces)
    security = (previous.get("meta") or {}).get("security") if previous else None
    return [s for s in security or () if isinstance(s, dict)]


async def apply(tx: Transaction, resource: dict[str, Any], caller: Caller | None = None, *,
                replaces: str | None = None) -> dict[str, Any]:
    """The resource as it should be stored: its labels plus the ones its codes, its diagnoses and its source
    imply, and — when a Care Partner updates resource ``replaces`` — the labels the current version carries.
    ``caller`` defaults to the current request's caller (:data:`WRITER`)."""
    writer = caller if caller is not None else current_writer()
    kept = await _kept(tx, resource, replaces, writer)
    rtype = resource.get("resourceType")
    if rtype not in LABELLED_TYPES:
        if rtype == "ValueSet" and resource.get("id") in _VALUE_SET_ID_SET:
            _states.pop(tx, None)  # later writes in this transaction see the new content
        elif rtype == "Organization":
            state = _states.get(tx)
            if state is not None:
                state.part2.pop(str(resource.get("id")), None)
        return sls.merge(resource, kept) if kept else resource
    state = await _state(tx)
    added = [*kept, *state.labeller.labels(resource)]
    added.extend(await _inherited(tx, state, resource))
    if await part2_source(tx, resource, writer):
        added.append(sls.PART2)
    return sls.merge(resource, added) if added else resource
