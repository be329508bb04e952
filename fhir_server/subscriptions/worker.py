"""The delivery worker: one per server process, several processes share the work through leases in the store.

Loop: claim subscriptions with work due (a short lease in the store, never a transaction held across a
request), deliver each one's events in number order in its own task, then record progress and release the
lease. A crash between commit and delivery loses nothing: the events are in the store, and an expired lease
is claimed again (at least once; a redelivery carries the same number).

- **Order**: one task per subscription at a time (the lease), events sent in number order, the next only after
  the previous one succeeded.
- **Retries**: an attempt fails without a 2xx within the subscription's timeout; the next attempt waits 1, 2,
  4 … s (``FHIR_SUBSCRIPTION_RETRY_SECONDS`` × 2ⁿ, jitter ≤ 20 %); after ``FHIR_SUBSCRIPTION_MAX_ATTEMPTS`` the
  subscription goes to ``error`` with the reason (events are still recorded; ``$events`` replays them).
- **Isolation**: at most ``FHIR_SUBSCRIPTION_ENDPOINT_CONCURRENCY`` requests per endpoint origin at once, and
  each subscription in its own task, so a slow endpoint delays only its own subscriptions.
- **Enforcement**: events are recorded unnumbered; the worker holding the lease passes them through the consent
  gate as the subscription's owner and numbers only those the owner may see (:meth:`DeliveryWorker._number`),
  so a withheld write leaves no gap in ``event-number`` and no count in ``$status``. Each numbered event goes
  through the gate again when it is sent (a revocation since stops it at once); ``full-resource`` payloads are
  the disclosed copy.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import random
import time
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit
from uuid import uuid4

from fhir_server import metrics
from fhir_server.store.subscriptions import EventRow, SubscriptionState
from fhir_server.subscriptions import notify
from fhir_server.subscriptions.channels import Attempt
from fhir_server.subscriptions.model import Spec
from fhir_server.subscriptions.notify import Delivered

if TYPE_CHECKING:
    from fhir_server.security.caller import Caller
    from fhir_server.subscriptions.service import SubscriptionService

log = logging.getLogger("fhir_server.subscriptions")
MAX_INFLIGHT = 64
BATCHES_PER_CLAIM = 50
NUMBER_BATCH = 500  # pending events gated and numbered per store transaction
HOT_SECONDS = 0.3  # after a local write, poll quickly: its commit may still be under way
HOT_INTERVAL = 0.005
RETAIN_EVENTS = 1000
RETAIN_SECONDS = 7 * 24 * 3600


def _seconds_since(instant: str) -> float:
    """Seconds from a FHIR instant (the event's lastUpdated) to now; 0 if it cannot be read."""
    try:
        return max(0.0, time.time() - datetime.fromisoformat(instant.replace("Z", "+00:00")).timestamp())
    except ValueError:
        return 0.0


def backoff(attempts: int, base: float) -> float:
    """Seconds before attempt ``attempts + 1``: base × 2^(attempts-1), ±20 % jitter.

    >>> 0.8 <= backoff(1, 1.0) <= 1.2 and 3.2 <= backoff(3, 1.0) <= 4.8
    True
    """
    return base * 2 ** max(attempts - 1, 0) * random.uniform(0.8, 1.2)


class DeliveryWorker:
    def __init__(self, service: SubscriptionService) -> None:
        self.service = service
        self.settings = service.settings
        self.subs = service.subs
        self.id = f"worker-{uuid4()}"
        self._wake = asyncio.Event()
        self._hot_until = 0.0
        self._inflight: dict[str, asyncio.Task[None]] = {}
        self._slots: dict[str, asyncio.Semaphore] = {}
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    # --- lifecycle --------------------------------------------------------------------------------------------

    def start(self) -> None:
        if self._task is None:
            self._stopping = False
            self._task = asyncio.create_task(self._run(), name="subscription-delivery")

    async def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        tasks = list(self._inflight.values())
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def wake(self) -> None:
        self._hot_until = time.monotonic() + HOT_SECONDS
        self._wake.set()

    # --- the loop ---------------------------------------------------------------------------------------------

    async def _run(self) -> None:
        while not self._stopping:
            try:
                await self._claim_and_start()
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - the loop must survive a store hiccup; the lease will expire
                log.exception("subscription delivery: claiming failed")
                await asyncio.sleep(1)
            hot = time.monotonic() < self._hot_until
            try:
                await asyncio.wait_for(self._wake.wait(),
                                       HOT_INTERVAL if hot else self.settings.subscription_poll_seconds)
            except TimeoutError:
                pass
            self._wake.clear()

    async def _claim_and_start(self) -> None:
        room = MAX_INFLIGHT - len(self._inflight)
        if room <= 0:
            return
        claimed = await self.subs.claim(self.id, time.time(), self._lease(30), room, list(self._inflight),
                                        self.service.hub.bound_ids())
        for s in claimed:
            task = asyncio.create_task(self._serve(s), name=f"subscription-{s.id}")
            self._inflight[s.id] = task
            task.add_done_callback(functools.partial(self._done, s.id))

    def _done(self, subscription_id: str, _task: asyncio.Task[None]) -> None:
        self._inflight.pop(subscription_id, None)
        self._wake.set()  # it may have more work, or room was made

    @staticmethod
    def _lease(timeout: float) -> float:
        return timeout + 5

    def _slot(self, spec: Spec) -> asyncio.Semaphore:
        key = "websocket"
        if spec.endpoint:
            parts = urlsplit(spec.endpoint)
            key = f"{parts.scheme}://{parts.netloc}"
        slot = self._slots.get(key)
        if slot is None:
            slot = self._slots[key] = asyncio.Semaphore(self.settings.subscription_endpoint_concurrency)
        return slot

    # --- one subscription -------------------------------------------------------------------------------------

    async def _serve(self, s: SubscriptionState) -> None:
        spec = Spec.from_json(s.spec)
        changes: dict[str, Any] = {}
        try:
            async with self._slot(spec):
                claimed_until = s.lease_until
                numbered = await self._number(s, spec)
                if numbered is None:  # the owner's client is disabled (or the lease was lost): nothing goes out
                    changes = {"retry_at": time.time() + 2}
                elif s.lease_until == claimed_until and not await self._renew(s, spec):
                    return  # nothing was numbered (which renews the lease), and renewing it failed: lost
                elif s.status == "requested":
                    changes = await self._handshake(s, spec)
                elif s.status == "active" and s.last_number > s.delivered:
                    changes = await self._deliver_events(s, spec, numbered)
                elif s.heartbeat_at is not None and s.heartbeat_at <= time.time():
                    changes = await self._heartbeat(s, spec)
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - one subscription's failure must not stop the others
            log.exception("subscription delivery: Subscription/%s failed", s.id)
            changes = {"retry_at": time.time() + 5}
        await self.subs.finish(s.id, self.id, changes)

    async def _renew(self, s: SubscriptionState, spec: Spec) -> bool:
        """Hold the lease for one more attempt (the subscription's timeout + 5 s: after a crash another worker
        takes over soon); False when it was lost."""
        s.lease_until = time.time() + self._lease(spec.timeout)
        return await self.subs.renew(s.id, self.id, s.lease_until)

    async def _keep(self, s: SubscriptionState, spec: Spec) -> bool:
        """Before another attempt: renew only when the lease could run out during it (a fast endpoint costs no
        store write per event)."""
        if s.lease_until - time.time() > spec.timeout + 1:
            return True
        return await self._renew(s, spec)

    async def _number(self, s: SubscriptionState, spec: Spec) -> dict[int, Delivered] | None:
        """Gate the subscription's pending events as its owner, now, and number those it may see (the rest are
        dropped: they leave no number and no count), renewing the lease in the same store transaction. Updates
        ``s.last_number`` and ``s.lease_until``; returns the newly numbered events
        with their disclosed copies (so delivery need not gate them a second time a moment later), or None when
        nothing may be numbered now (the owner's client is disabled, or the lease was lost)."""
        numbered: dict[int, Delivered] = {}
        owner: Caller | None = None
        for _ in range(BATCHES_PER_CLAIM):
            pending = await self.subs.pending(s.id, NUMBER_BATCH)
            if not pending:
                break
            if owner is None:
                owner = await self.service.owner(s)
                if owner is None:
                    return None
            shown = await self.service.disclose(owner, [p.event for p in pending])
            kept = {id(d.event) for d in shown}
            accepted = [p.token for p in pending if id(p.event) in kept]
            until = time.time() + self._lease(spec.timeout)
            last = await self.subs.number(s.id, self.id, accepted, [p.token for p in pending], until)
            if last is None:
                return None
            first = last - len(shown) + 1
            for i, d in enumerate(shown):
                numbered[first + i] = Delivered(replace(d.event, number=first + i), d.body)
            s.last_number, s.lease_until = last, until
            if len(pending) < NUMBER_BATCH:
                break
        return numbered

    def _sent(self, spec: Spec) -> dict[str, Any]:
        now = time.time()
        return {"last_sent": now, "heartbeat_at": now + spec.heartbeat if spec.heartbeat else None}

    async def _failed(self, s: SubscriptionState, attempt: Attempt, what: str, before: int | None = None
                      ) -> dict[str, Any]:
        """``before``: failed attempts of this delivery so far (default: as claimed)."""
        attempts = (s.attempts if before is None else before) + 1
        if attempts >= self.settings.subscription_max_attempts:
            reason = f"{what} failed {attempts} times; last: {attempt.reason}"
            await self.service.set_status(s, "error", reason)
            return {"attempts": 0, "retry_at": 0.0}
        delay = backoff(attempts, self.settings.subscription_retry_seconds)
        return {"attempts": attempts, "retry_at": time.time() + delay}

    async def _handshake(self, s: SubscriptionState, spec: Spec) -> dict[str, Any]:
        attempt = await self._send_bundle(s, spec, "handshake", [])
        if not attempt.ok:
            return await self._failed(s, attempt, "the handshake")
        await self.service.set_status(s, "active", None)
        return {"attempts": 0, "retry_at": 0.0, **self._sent(spec)}

    async def _heartbeat(self, s: SubscriptionState, spec: Spec) -> dict[str, Any]:
        if s.kind == "topic" and s.status in ("active", "error"):
            await self._send_bundle(s, spec, "heartbeat", [])
        return self._sent(spec)

    async def _deliver_events(self, s: SubscriptionState, spec: Spec, numbered: dict[int, Delivered]
                              ) -> dict[str, Any]:
        delivered = s.delivered
        owner = await self.service.owner(s)
        if owner is None:  # the owner's client is disabled: nothing goes out, nothing is lost
            return {"retry_at": time.time() + 2}
        group = spec.max_count if s.kind == "topic" else 1
        failures = s.attempts  # of the first undelivered event; 0 once it went out
        for _ in range(BATCHES_PER_CLAIM):
            events = await self.subs.events(s.id, delivered + 1, s.last_number, group)
            if not events:
                break
            if all(e.number in numbered for e in events):  # gated a moment ago, when they were numbered
                visible = [numbered[e.number] for e in events]
            else:
                visible = await self.service.disclose(owner, events)
            attempt = Attempt(True) if not visible else await self._send_events(s, spec, visible)
            if not attempt.ok:
                changes = await self._failed(s, attempt, f"delivery of event {events[0].number}", failures)
                return {"delivered": delivered, **changes}
            delivered, failures = events[-1].number, 0
            if visible:
                metrics.set_subscription_delivery_lag(_seconds_since(events[-1].at))
            if not await self._keep(s, spec):
                break
        if delivered % 100 == 0 or delivered - s.delivered >= 100:
            await self._prune(s, delivered)
        return {"delivered": delivered, "attempts": 0, "retry_at": 0.0, "error": None, **self._sent(spec)}

    async def _prune(self, s: SubscriptionState, delivered: int) -> None:
        from datetime import UTC, datetime

        cutoff = datetime.fromtimestamp(time.time() - RETAIN_SECONDS, UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
        await self.subs.prune(s.id, min(delivered, s.last_number - RETAIN_EVENTS) + 1, cutoff)

    # --- sending ----------------------------------------------------------------------------------------------

    async def _send_events(self, s: SubscriptionState, spec: Spec, visible: list[Delivered]) -> Attempt:
        if s.kind == "topic":
            return await self._send_bundle(s, spec, "event-notification", visible)
        d = visible[0]
        if spec.channel == "websocket":
            return await self.service.hub.send(s.id, f"ping {s.id}")
        assert spec.endpoint is not None
        headers = _headers(spec)
        if spec.payload is None:
            return await self.service.rest.send("POST", spec.endpoint, headers, None, spec.timeout)
        url = f"{spec.endpoint.rstrip('/')}/{d.event.resource_type}/{d.event.id}"
        if d.event.interaction == "delete":
            return await self.service.rest.send("DELETE", url, headers, None, spec.timeout)
        headers["Content-Type"] = spec.payload
        return await self.service.rest.send("PUT", url, headers, d.body, spec.timeout)

    async def _send_bundle(self, s: SubscriptionState, spec: Spec, kind: str, events: list[Delivered]) -> Attempt:
        base = spec.extra.get("base") or self.service.default_base
        since = events[-1].event.number if events else s.last_number
        params = notify.status_parameters(base, s.id, spec.criteria, "active" if kind == "handshake" else s.status,
                                          kind, since, events, spec.content)
        body = notify.notification(base, s.id, params, events, spec.content)
        if spec.channel == "websocket":
            return await self.service.hub.send(s.id, body.decode())
        assert spec.endpoint is not None
        headers = {**_headers(spec), "Content-Type": spec.payload or "application/fhir+json"}
        return await self.service.rest.send("POST", spec.endpoint, headers, body, spec.timeout)


def _headers(spec: Spec) -> dict[str, str]:
    out: dict[str, str] = {}
    for h in spec.headers:
        name, _, value = h.partition(":")
        out[name.strip()] = value.strip()
    return out


__all__ = ["DeliveryWorker", "EventRow", "backoff"]
