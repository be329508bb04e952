"""Single-resource write interactions: create, update, delete — always inside a store transaction.

Every write follows the same steps: check the body (type, id, structure), read the current version inside the
transaction (so ``If-Match`` races have exactly one winner), stamp ``meta.versionId``/``meta.lastUpdated``,
serialise to canonical bytes, extract search index values, and put.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import uuid_utils

from fhir_server.fhir import instant, jsonio, registry
from fhir_server.fhir.outcome import BadRequest, FHIRError, Gone, NotFound, PreconditionFailed
from fhir_server.fhir.search.index import IndexRows, extract
from fhir_server.fhir.validation import resource_rules
from fhir_server.repository import labels
from fhir_server.repository.references import local_target, location_of, reference_strings
from fhir_server.store.base import ResourceVersion, Transaction
from fhir_server.subscriptions import outbox

# May the writer see this target? (the consent gate for a Care Partner; None: everything is visible)
Visible = Callable[[ResourceVersion], Awaitable[bool]]


@dataclass(frozen=True, slots=True)
class WriteResult:
    """What a write produced; ``resource`` is the stored dict (None for deletes)."""

    version: ResourceVersion
    created: bool
    resource: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class Prepared:
    """The part of a create that needs no store: done before the write lock is taken (issue #16), so that with
    several writers one Bundle's extraction runs while another's commit syncs.

    ``source`` is the resource ``rows`` were extracted from: the rows are used only when labelling left that
    very object unchanged (otherwise the labelled version is extracted again). ``references``: its
    ``Reference.reference`` strings — stamping and labelling add only ``id`` and ``meta`` codings, never a
    reference, so they are the written resource's too.
    """

    source: dict[str, Any]
    rows: IndexRows
    references: list[str]


def prepare(resource: dict[str, Any], id: str) -> Prepared:
    """Index rows and reference strings of ``resource`` as its first version ``id`` (no I/O).

    Neither depends on ``meta.lastUpdated`` (``_lastUpdated`` is a resource column, not an index row) nor on
    ``meta.versionId`` (no search parameter reads it), so the real stamp inside the transaction changes neither.
    """
    return Prepared(resource, extract(stamp(resource, id, 1, instant.now())), reference_strings(resource))


def new_id() -> str:
    """A server-assigned id: a UUID version 7 (RFC 9562), time-ordered with 74 random bits.

    Time order matters for ingest: every index led by ``(type, id)`` (resource, history, the default search
    order) receives new ids at its end instead of at random pages, so a 100-resource transaction dirties a few
    pages rather than hundreds, and its commit writes and syncs that much less (issue #16). The id reveals its
    creation time to the millisecond, which ``meta.lastUpdated`` of the first version already does.
    """
    return str(uuid_utils.uuid7())


def check_body(resource: Any, resource_type: str, id: str | None = None) -> dict[str, Any]:
    """Validate a client body for a write to ``resource_type`` (and ``id`` on update).

    Raises 400 with an OperationOutcome naming the element for each problem, and 422 when the resource breaks
    an error-level invariant of its base definition (a Consent with neither policy nor policyRule).
    """
    if not isinstance(resource, dict):
        raise BadRequest("the body must be a JSON object holding a FHIR resource", code="structure")
    given = resource.get("resourceType")
    if given != resource_type:
        raise BadRequest(f"resourceType {given!r} does not match the URL's type {resource_type!r}",
                         ["resourceType"], code="invalid")
    if id is not None:
        if "id" not in resource:
            raise BadRequest(f"the resource must carry id {id!r} to be updated at this URL",
                             [f"{resource_type}.id"], code="required")
        if resource["id"] != id:
            raise BadRequest(f"the resource id {resource['id']!r} does not match the URL's id {id!r}",
                             [f"{resource_type}.id"], code="invalid")
    issues = registry.validate(resource)
    if issues:
        raise FHIRError.from_issues(400, issues)
    broken = resource_rules.check(resource)  # the base definition's error-level invariants (ppc-1 …)
    if broken:
        raise FHIRError.from_issues(422, broken)
    return resource


def stamp(resource: dict[str, Any], id: str, version_id: int, last_updated: str) -> dict[str, Any]:
    """Set the server-owned ``id`` and ``meta`` fields; keeps the client's other meta elements."""
    meta = dict(resource.get("meta") or {})
    meta["versionId"] = str(version_id)
    meta["lastUpdated"] = last_updated
    stamped = {"resourceType": resource["resourceType"], "id": id, "meta": meta}
    stamped.update((k, v) for k, v in resource.items() if k not in ("resourceType", "id", "meta"))
    return stamped


async def check_references(tx: Transaction, resource: dict[str, Any], base_url: str | None = None,
                           checked: set[tuple[str, str]] | None = None, visible: Visible | None = None,
                           references: list[str] | None = None,
                           fetched: dict[tuple[str, str], ResourceVersion | None] | None = None) -> None:
    """Reject references to local resources that do not exist (or are deleted).

    ``checked``: targets already found live in this transaction (a Bundle's resources often share their
    Patient or Organization); found ones are added. Only valid while nothing is deleted meanwhile.
    ``references``: ``reference_strings(resource)`` when already known (:class:`Prepared`).
    ``fetched``: current versions read beforehand in this transaction (None: the target does not exist).
    """
    seen = checked if checked is not None else set()
    for reference in references if references is not None else reference_strings(resource):
        target = local_target(reference, base_url)
        if target is None or target in seen:
            continue
        found = fetched[target] if fetched is not None and target in fetched else await tx.current(*target)
        if found is not None and visible is not None and not await visible(found):
            found = None  # withheld from the writer: "does not exist", as for a missing one (ACCESS.md §B)
        if found is None or found.deleted:
            state = "has been deleted" if found is not None else "does not exist"
            where = location_of(resource, reference)
            raise FHIRError(409 if found is not None else 400, "not-found",
                            f"{where} refers to {reference}, which {state} on this server", (where,))
        seen.add(target)


async def _put(tx: Transaction, resource: dict[str, Any], id: str, version_id: int, method: str,
               prepared: Prepared | None = None) -> tuple[ResourceVersion, dict[str, Any]]:
    # ACCESS.md §C: labels before index extraction, on every write path
    labelled = await labels.apply(tx, resource, replaces=id if version_id > 1 else None)
    stamped = stamp(labelled, id, version_id, instant.now())
    version = ResourceVersion(stamped["resourceType"], id, version_id, stamped["meta"]["lastUpdated"], False,
                              jsonio.dumps(stamped), method)
    reuse = prepared is not None and version_id == 1 and prepared.source is labelled
    rows = prepared.rows if reuse and prepared is not None else extract(stamped)
    await tx.put(version, rows)
    await outbox.record(tx, version, rows)  # subscription events, in this same transaction
    return version, stamped


def _check_if_match(current: ResourceVersion | None, if_match: int | None, reference: str) -> None:
    if if_match is None:
        return
    if current is None:
        raise PreconditionFailed(f"{reference} does not exist, so it cannot match version {if_match}")
    if current.version_id != if_match:
        raise PreconditionFailed(
            f"{reference} is at version {current.version_id}, not {if_match} (If-Match); read it again")


async def create(tx: Transaction, resource: dict[str, Any], *, id: str | None = None,
                 check_refs: bool = True, base_url: str | None = None, visible: Visible | None = None,
                 prepared: Prepared | None = None) -> WriteResult:
    """Create with a server-assigned id (``id`` lets bundles pre-assign one for ``urn:uuid`` rewriting).
    ``prepared``: :func:`prepare` of this very ``resource`` and ``id``, done before the transaction."""
    if check_refs:
        await check_references(tx, resource, base_url, visible=visible,
                               references=prepared.references if prepared is not None else None)
    version, stamped = await _put(tx, resource, id or new_id(), 1, "POST", prepared)
    return WriteResult(version, True, stamped)


async def update(tx: Transaction, resource_type: str, id: str, resource: dict[str, Any], *,
                 if_match: int | None = None, check_refs: bool = True, base_url: str | None = None,
                 method: str = "PUT", visible: Visible | None = None) -> WriteResult:
    """Update (a new version), or update-as-create when the id is new."""
    current = await tx.current(resource_type, id)
    _check_if_match(current, if_match, f"{resource_type}/{id}")
    if check_refs:
        await check_references(tx, resource, base_url, visible=visible)
    next_version = 1 if current is None else current.version_id + 1
    version, stamped = await _put(tx, resource, id, next_version, method)
    return WriteResult(version, current is None or current.deleted, stamped)


async def delete(tx: Transaction, resource_type: str, id: str, *, if_match: int | None = None,
                 ) -> ResourceVersion | None:
    """Delete (a delete-marker version). Deleting a deleted or unknown resource is a no-op (None)."""
    current = await tx.current(resource_type, id)
    _check_if_match(current, if_match, f"{resource_type}/{id}")
    if current is None or current.deleted:
        return None
    version = ResourceVersion(resource_type, id, current.version_id + 1, instant.now(), True, None, "DELETE")
    await outbox.record_delete(tx, version, current)  # subscription events; before the marker hides `current`
    await tx.put(version, None)
    return version


def require_live(version: ResourceVersion | None, resource_type: str, id: str) -> ResourceVersion:
    """The current version for a read: 404 if unknown, 410 if deleted."""
    if version is None:
        raise NotFound(f"{resource_type}/{id} is not known to this server")
    if version.deleted:
        raise Gone(f"{resource_type}/{id} has been deleted (version {version.version_id})",
                   ) from None
    return version
