"""The outbox: the one call the write path makes (``repository.resources``), inside the write's transaction.

:func:`record` finds the subscriptions a new version matches (:mod:`.matching`) and appends an (unnumbered) event
for each, in the same store transaction as the version itself — so a committed write is always notified, even
after a crash, and a rolled-back write never is. Matching happens at once (it must see the transaction as the
write left it); the events of all the transaction's writes are written together just before it commits
(:meth:`~fhir_server.store.base.Transaction.before_commit`): a transaction Bundle of 100 resources costs one
batched store write, not 100. Writes of ``Subscription`` resources (re)register the
subscription here too, in that same transaction: the API's Subscription handlers validate the resource, check
the endpoint and the caller's scopes *before* the transaction, and hand the result over with
:func:`registering`; a Subscription written any other way (inside a Bundle, by PATCH) is refused with 422.

After recording, the process's delivery workers are woken (:func:`add_waker`); workers in other processes find
the events by polling.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from fhir_server.fhir import jsonio
from fhir_server.fhir.outcome import Unprocessable
from fhir_server.fhir.search.index import IndexRows, extract
from fhir_server.store.base import ResourceVersion, Transaction
from fhir_server.store.subscriptions import EventRow, SubscriptionState, for_transaction
from fhir_server.subscriptions import matching
from fhir_server.subscriptions.model import Spec


@dataclass(frozen=True)
class Registration:
    """What the Subscription handlers (or the delivery worker changing a status) decided before writing."""

    owner: dict[str, Any]
    spec: Spec
    status: str
    error: str | None = None
    heartbeat_at: float | None = None


_REGISTERING: ContextVar[Registration | None] = ContextVar("subscription_registration", default=None)
_WAKERS: set[Callable[[], None]] = set()
_BATCH = "subscription_events"


@contextmanager
def registering(registration: Registration) -> Iterator[None]:
    """Within this block, the Subscription written is registered as ``registration`` says."""
    token = _REGISTERING.set(registration)
    try:
        yield
    finally:
        _REGISTERING.reset(token)


def add_waker(wake: Callable[[], None]) -> None:
    _WAKERS.add(wake)


def remove_waker(wake: Callable[[], None]) -> None:
    _WAKERS.discard(wake)


def wake() -> None:
    for w in list(_WAKERS):
        w()


async def record(tx: Transaction, version: ResourceVersion, rows: IndexRows | None) -> None:
    """Record the events ``version`` causes. ``rows`` are the index values of the new version, or for a delete
    those of the last version (called before the delete marker is put, so searches in ``tx`` still see it)."""
    subs = for_transaction(tx)
    if version.resource_type == "Subscription":
        await _register(tx, version)
    if rows is None:
        return
    keys = matching.resource_keys(version.resource_type, version.id, rows)
    candidates = await subs.candidates(tx, keys)
    if not candidates:
        return
    written = set(keys)
    matched = []
    decided: dict[str, bool] = {}  # many subscriptions share their filters (the same criteria, other endpoints)
    for c in candidates:
        found = decided.get(c.filters)
        if found is None:
            found = matching.quick(c.filters, version.resource_type, written)
            if found is None:
                found = await matching.matches(tx, c.filters, version, rows)
            decided[c.filters] = found
        if found:
            matched.append(c.id)
    if not matched:
        return
    interaction = "delete" if version.deleted else ("create" if version.method == "POST" or version.version_id == 1
                                                    else "update")
    event = EventRow("", 0, version.resource_type, version.id, version.version_id, interaction,
                     version.last_updated)
    batch = tx.notes.get(_BATCH)
    if batch is None:
        batch = tx.notes[_BATCH] = []

        async def flush() -> None:
            await subs.append(tx, batch)
            wake()

        tx.before_commit(flush)
    batch.append((matched, event))


async def record_delete(tx: Transaction, marker: ResourceVersion, last: ResourceVersion) -> None:
    """Record the events of a delete (``marker``), matched against the ``last`` version, before the marker is
    put."""
    rows = extract(jsonio.loads(last.body)) if last.body is not None else None
    await record(tx, marker, rows)


async def _register(tx: Transaction, version: ResourceVersion) -> None:
    subs = for_transaction(tx)
    if version.deleted:
        await subs.unregister(tx, version.id)
        return
    reg = _REGISTERING.get()
    if reg is None:
        raise Unprocessable("Subscriptions are created and changed with POST /Subscription and "
                            "PUT /Subscription/[id] only (not in Bundles, not by PATCH or conditional update)",
                            ["Subscription"], code="business-rule")
    await subs.register(tx, SubscriptionState(
        id=version.id, kind=reg.spec.kind, channel=reg.spec.channel, status=reg.status, owner=reg.owner,
        spec=reg.spec.to_json(), keys=matching.subscription_keys(reg.spec) if reg.status != "off" else [],
        error=reg.error, heartbeat_at=reg.heartbeat_at))
    wake()
