"""Subscriptions for one server: the store's subscription state, the channels, the delivery worker, the gate.

``create_app`` builds one :class:`SubscriptionService` per app and starts its worker in the lifespan (unless
``FHIR_SUBSCRIPTION_DELIVERY`` is off). The API's Subscription handlers use :meth:`prepare` before writing and
:meth:`owns` for ``$status``/``$events``/``$get-ws-binding-token``.
"""

from __future__ import annotations

import time
from dataclasses import asdict
from typing import Any

from fhir_server.consent.gate import Gate
from fhir_server.fhir import jsonio
from fhir_server.fhir.outcome import FHIRError
from fhir_server.repository import resources as repo
from fhir_server.security.caller import ADMINISTRATOR, Caller
from fhir_server.settings import Settings
from fhir_server.store.base import Store, Transaction
from fhir_server.store.security import security_store
from fhir_server.store.subscriptions import EventRow, SubscriptionState, subscription_store
from fhir_server.subscriptions import endpoint, outbox, parse
from fhir_server.subscriptions.channels import RestHook, WebSocketHub
from fhir_server.subscriptions.model import Spec
from fhir_server.subscriptions.notify import Delivered
from fhir_server.subscriptions.worker import DeliveryWorker

CLIENT_RECHECK_SECONDS = 1.0


def owner_json(caller: Caller) -> dict[str, Any]:
    return asdict(caller)


def owner_caller(data: dict[str, Any]) -> Caller:
    return Caller(data["client_id"], data.get("organization"), dict(data.get("scopes") or {}), data.get("purpose"),
                  data.get("user"))


class SubscriptionService:
    def __init__(self, settings: Settings, store: Store, gate: Gate) -> None:
        self.settings = settings
        self.store = store
        self.gate = gate
        self.subs = subscription_store(store)
        self.hub = WebSocketHub()
        self.rest = RestHook(settings.subscription_allow_http, settings.subscription_allow_private)
        self.worker = DeliveryWorker(self)
        self.default_base = settings.base_url or "http://localhost:8000/fhir"
        self._active: dict[str, tuple[bool, float]] = {}

    async def start(self) -> None:
        await self.subs.open()
        if self.settings.subscription_delivery:
            outbox.add_waker(self.worker.wake)
            self.worker.start()

    async def stop(self) -> None:
        outbox.remove_waker(self.worker.wake)
        await self.worker.stop()
        await self.rest.close()

    # --- accepting a Subscription -------------------------------------------------------------------------

    async def prepare(self, caller: Caller, resource: dict[str, Any], base: str) -> outbox.Registration:
        """Validate a Subscription a caller creates or updates (422/403 before anything is stored) and decide its
        status: ``off`` stays off; a classic or websocket subscription is ``active`` at once; a topic-based
        rest-hook subscription is ``requested`` until its handshake succeeds."""
        spec = parse.spec_from_resource(resource, self.settings.canonical_base)
        spec.extra["base"] = base
        missing = sorted(t for t in parse.read_types(spec) if not caller.allows(t, "r"))
        if missing:
            raise FHIRError(403, "forbidden", f"the criteria need read access to {', '.join(missing)}, which this "
                            "client's token does not grant", ("Subscription.criteria",))
        if spec.endpoint is not None:
            await endpoint.check(spec.endpoint, allow_http=self.settings.subscription_allow_http,
                                 allow_private=self.settings.subscription_allow_private)
        asked = resource.get("status")
        if asked == "off":
            status = "off"
        elif spec.kind == "topic" and spec.channel == "rest-hook":
            status = "requested"
        else:
            status = "active"
        heartbeat = time.time() + spec.heartbeat if spec.heartbeat else None
        return outbox.Registration(owner_json(caller), spec, status, None, heartbeat)

    # --- delivery helpers ---------------------------------------------------------------------------------

    async def owner(self, s: SubscriptionState) -> Caller | None:
        """The stored caller the subscription acts as; None when its client is registered and disabled (read
        from the client registry at most every :data:`CLIENT_RECHECK_SECONDS`). A client the registry does not
        know (the local administrator of ``FHIR_AUTH=off``) acts as stored. A person's subscription (made with
        a web page token) stops when the person is disabled or unknown."""
        caller = owner_caller(s.owner)
        if caller.client_id == ADMINISTRATOR.client_id:
            return caller
        now = time.monotonic()
        key = caller.client_id if caller.user is None else f"user|{caller.user}"
        cached = self._active.get(key)
        if cached is None or now - cached[1] > CLIENT_RECHECK_SECONDS:
            registry = security_store(self.store)
            if caller.user is None:
                doc = await registry.get_client(caller.client_id)
                cached = (doc is None or bool(doc.get("active", True)), now)
            else:
                doc = await registry.get_user(caller.user)
                cached = (doc is not None and bool(doc.get("active", True))
                          and doc.get("organization") == caller.organization, now)
            self._active[key] = cached
        return caller if cached[0] else None

    async def disclose(self, owner: Caller, events: list[EventRow]) -> list[Delivered]:
        """The events ``owner`` may see now, with the disclosed copy of each resource (None for deletes)."""
        out: list[Delivered] = []
        for e in events:
            version = await self.store.vread(e.resource_type, e.id, e.version_id)
            if version is None:
                continue
            seen = version
            if version.deleted:  # a delete is visible when the last version was
                last = await self.store.vread(e.resource_type, e.id, e.version_id - 1)
                if last is None:
                    continue
                seen = last
            if not await self.gate.visible(owner, [seen]):
                continue
            out.append(Delivered(e, None if version.deleted else self.gate.disclosed(owner, version)))
        return out

    async def set_status(self, s: SubscriptionState, status: str, error: str | None) -> None:
        """The server changes a subscription's status: a new version of the Subscription resource (status and
        ``error``) and the state, in one transaction."""
        spec = Spec.from_json(s.spec)
        heartbeat = time.time() + spec.heartbeat if spec.heartbeat else None

        async def write(tx: Transaction) -> None:
            current = await tx.current("Subscription", s.id)
            if current is None or current.deleted or current.body is None:
                return
            body = jsonio.loads(current.body)
            if body.get("status") == "off":
                return  # the client turned it off meanwhile
            body["status"] = status
            if error:
                body["error"] = error
            else:
                body.pop("error", None)
            with outbox.registering(outbox.Registration(s.owner, spec, status, error, heartbeat)):
                await repo.update(tx, "Subscription", s.id, body, check_refs=False)

        await self.store.run_transaction(write)
