"""The two ways a notification leaves the server: an HTTP request (rest-hook) or a websocket message.

:class:`RestHook` sends with one shared ``httpx.AsyncClient`` (no redirects, a timeout per attempt) and
re-checks the endpoint before each request (a name may resolve elsewhere than when the Subscription was
accepted). :class:`WebSocketHub` knows the sockets bound in this process; a websocket subscription is delivered
only by the process its socket is connected to.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import httpx

from fhir_server.fhir.outcome import FHIRError
from fhir_server.subscriptions import endpoint

log = logging.getLogger("fhir_server.subscriptions")


@dataclass(frozen=True, slots=True)
class Attempt:
    """The outcome of one delivery attempt; ``reason`` says why it failed (status or network error)."""

    ok: bool
    reason: str = ""


class RestHook:
    def __init__(self, allow_http: bool, allow_private: bool) -> None:
        self.allow_http = allow_http
        self.allow_private = allow_private
        self._client: httpx.AsyncClient | None = None

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(follow_redirects=False, trust_env=False,
                                             limits=httpx.Limits(max_connections=200, max_keepalive_connections=50))
        return self._client

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def send(self, method: str, url: str, headers: dict[str, str], body: bytes | None,
                   timeout: float) -> Attempt:
        try:
            await endpoint.check(url, allow_http=self.allow_http, allow_private=self.allow_private)
        except FHIRError as exc:
            return Attempt(False, exc.diagnostics)
        try:
            response = await asyncio.wait_for(
                self._http().request(method, url, headers=headers, content=body, timeout=timeout), timeout + 1)
        except (httpx.HTTPError, TimeoutError, OSError) as exc:
            return Attempt(False, f"{type(exc).__name__}: {exc}".rstrip(": ") or "network error")
        if 200 <= response.status_code < 300:
            return Attempt(True)
        return Attempt(False, f"HTTP {response.status_code} from the endpoint")


Sender = Callable[[str], Awaitable[None]]


class WebSocketHub:
    """Sockets bound to subscriptions in this process: ``bind`` on ``bind <id>``/``bind-with-token``."""

    def __init__(self) -> None:
        self._bound: dict[str, set[Sender]] = {}

    def bind(self, subscription_id: str, send: Sender) -> None:
        self._bound.setdefault(subscription_id, set()).add(send)

    def unbind_all(self, send: Sender) -> None:
        for sid in list(self._bound):
            self._bound[sid].discard(send)
            if not self._bound[sid]:
                del self._bound[sid]

    def bound_ids(self) -> list[str]:
        return list(self._bound)

    async def send(self, subscription_id: str, text: str) -> Attempt:
        """Send to every socket bound to the subscription; a socket that fails is dropped."""
        sockets = list(self._bound.get(subscription_id, ()))
        sent = 0
        for s in sockets:
            try:
                await asyncio.wait_for(s(text), 10)
                sent += 1
            except Exception as exc:  # noqa: BLE001 - a broken socket of any kind is simply dropped
                log.info("websocket for Subscription/%s dropped: %s", subscription_id, exc)
                self.unbind_all(s)
        return Attempt(True) if sent else Attempt(False, "no websocket bound")
