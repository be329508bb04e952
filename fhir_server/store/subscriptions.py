"""What the stores keep for Subscriptions: delivery state, the outbox of events, and the matching keys.

The FHIR ``Subscription`` resource is stored like any other resource; beside it each store keeps one
:class:`SubscriptionState` per subscription (status, owner, parsed spec, event counter, delivery progress, lease)
and its events. Both live in the store so every server worker sees them: the events are appended, unnumbered, in the
*same transaction* as the write that caused them (:meth:`SubscriptionStore.append`, :class:`Pending`); a delivery
worker holding the subscription's lease (:meth:`SubscriptionStore.claim` — a short lease, never a transaction held
across an HTTP request) passes them through the consent gate as the subscription's owner and numbers only those
the owner may see (:meth:`SubscriptionStore.number`, unique per (subscription, number)). So a subscription's
numbers and counts (``$status``, ``$events``, ``event-number``) count only what its owner may see: a withheld
write leaves no gap and no count behind (ACCESS.md §B, §E).

``keys`` are the index entries matching starts from: ``"<Type>|<param>=<value>"`` for the one equality filter a
subscription is filed under, or ``"<Type>|*"`` when it has none (see ``subscriptions.matching``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from fhir_server.store.base import Store, Transaction

NEVER = 1e18  # a time far in the future (epoch seconds)


@dataclass(slots=True)
class SubscriptionState:
    """The server-side state of one Subscription (times are epoch seconds)."""

    id: str
    kind: str  # classic | topic
    channel: str  # rest-hook | websocket
    status: str  # requested | active | error | off
    owner: dict[str, Any]  # the Caller that created it, as JSON
    spec: dict[str, Any]  # the parsed Subscription (subscriptions.model.Spec as JSON)
    keys: list[str]
    last_number: int = 0  # events numbered so far (the last number given; only events the owner may see)
    delivered: int = 0  # numbered events delivered (or skipped by the gate at delivery) so far
    attempts: int = 0  # failed attempts of the current delivery or handshake
    retry_at: float = 0.0
    error: str | None = None
    heartbeat_at: float | None = None  # next heartbeat due (None: no heartbeats)
    last_sent: float = 0.0
    lease_owner: str | None = None
    lease_until: float = 0.0
    ws_token: str | None = None
    ws_token_expires: float = 0.0


@dataclass(frozen=True, slots=True)
class EventRow:
    """One recorded event: the version that caused it (``interaction`` create | update | delete)."""

    subscription: str
    number: int
    resource_type: str
    id: str
    version_id: int
    interaction: str
    at: str  # the version's lastUpdated instant


@dataclass(frozen=True, slots=True)
class Pending:
    """An event recorded but not numbered yet (``event.number`` is 0): ``token`` names it to
    :meth:`SubscriptionStore.number`."""

    token: Any
    event: EventRow


@dataclass(frozen=True, slots=True)
class Candidate:
    """A subscription whose keys met a written resource's values: its filters are evaluated next.

    ``filters`` is :func:`filters_text` of its spec: one ``Type?query`` per line (a compact, cacheable key)."""

    id: str
    filters: str


def filters_text(spec: dict[str, Any]) -> str:
    """``Consent?patient=1`` lines of a spec's (ORed) filters."""
    return "\n".join(f"{f['resource_type']}?{f['query']}" for f in spec.get("filters", ()))


class SubscriptionStore(Protocol):
    """Subscription state and outbox operations every store implements (``store/<kind>/subscriptions.py``)."""

    async def open(self) -> None:
        """Create tables/collections and indexes (idempotent)."""

    # --- inside a write transaction ---------------------------------------------------------------------
    async def candidates(self, tx: Transaction, keys: list[str]) -> list[Candidate]:
        """Subscriptions not ``off`` filed under any of ``keys``."""

    async def append(self, tx: Transaction, batch: list[tuple[list[str], EventRow]]) -> None:
        """Record each event, unnumbered, for each of its subscriptions (``EventRow.subscription``/``number`` are
        ignored), in write order: the events of a whole transaction in one go, just before it commits."""

    async def register(self, tx: Transaction, state: SubscriptionState) -> None:
        """Insert or replace a subscription's definition (status, owner, spec, keys); its counters stay."""

    async def unregister(self, tx: Transaction, id: str) -> None:
        """The Subscription was deleted: forget its state and events."""

    # --- outside transactions -----------------------------------------------------------------------------
    async def get(self, id: str) -> SubscriptionState | None: ...

    async def claim(self, worker: str, now: float, lease_seconds: float, limit: int, exclude: list[str],
                    websocket_ids: list[str]) -> list[SubscriptionState]:
        """Lease up to ``limit`` subscriptions that have work due now (events to number or deliver, a handshake,
        a heartbeat) and no live lease; websocket subscriptions only when bound here (``websocket_ids``)."""

    async def renew(self, id: str, worker: str, until: float) -> bool:
        """Extend a lease this worker holds; False when it lost it."""

    async def finish(self, id: str, worker: str, changes: dict[str, Any]) -> bool:
        """Apply ``changes`` (fields of :class:`SubscriptionState`) and release the lease, if still held."""

    async def pending(self, id: str, limit: int) -> list[Pending]:
        """The subscription's unnumbered events in write order (at most ``limit``)."""

    async def number(self, id: str, worker: str, accepted: list[Any], consumed: list[Any], until: float
                     ) -> int | None:
        """In one transaction, if ``worker`` still holds the lease: give the pending events ``accepted`` (tokens,
        in order) the next numbers, forget the pending events ``consumed`` (a superset), extend the lease to
        ``until`` (as :meth:`renew`) and return the new ``last_number``; None (and nothing changed) when the lease
        was lost or another worker numbered them."""

    async def events(self, id: str, first: int, last: int, limit: int) -> list[EventRow]:
        """Events numbered ``first``..``last`` in order (at most ``limit``)."""

    async def prune(self, id: str, below: int, before: str) -> None:
        """Drop events numbered below ``below`` that are also older than ``before`` (an instant)."""

    async def set_token(self, ids: list[str], token: str, expires: float) -> None: ...

    async def by_token(self, token: str) -> list[SubscriptionState]: ...


def subscription_store(store: Store) -> SubscriptionStore:
    """The implementation for ``store`` (by its kind); one per store object, cached on it."""
    found = getattr(store, "_subscription_store", None)
    if found is not None:
        return found  # type: ignore[no-any-return]
    impl: SubscriptionStore
    if store.name == "mongo":
        from fhir_server.store.mongo.subscriptions import MongoSubscriptions

        impl = MongoSubscriptions(store)  # type: ignore[arg-type]
    else:
        from fhir_server.store.sqlite.subscriptions import SQLiteSubscriptions

        impl = SQLiteSubscriptions(store)  # type: ignore[arg-type]
    store._subscription_store = impl  # type: ignore[attr-defined]
    return impl


def for_transaction(tx: Transaction) -> SubscriptionStore:
    """The implementation serving a write transaction (the outbox hook has the transaction, not the store)."""
    mongo_store = getattr(tx, "store", None)
    if mongo_store is not None:
        return subscription_store(mongo_store)
    global _SQLITE_TX
    if _SQLITE_TX is None:
        from fhir_server.store.sqlite.subscriptions import SQLiteSubscriptions

        _SQLITE_TX = SQLiteSubscriptions(None)  # type: ignore[arg-type]  # in-transaction calls need no store
    return _SQLITE_TX


_SQLITE_TX: SubscriptionStore | None = None
