"""Makes the request's caller known to the write path (``repository.labels.WRITER``) without threading it
through every handler, bundle processor and intake: labelling needs the writing caller's Organization
(``42CFRPart2`` from a ``part2-program``, ACCESS.md §C).

A pure ASGI middleware, so the context variable is visible to the handler's task. It stores a resolver rather
than the caller: the authentication edge may set ``request.state.caller`` after this middleware has run, and
``request.state`` is the ASGI scope's ``state`` dict, which the resolver reads at write time.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from fhir_server.repository.labels import WRITER
from fhir_server.security.caller import ADMINISTRATOR, Caller


class WriterContext:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})

        def resolve() -> Caller:
            found = state.get("caller")
            return found if isinstance(found, Caller) else ADMINISTRATOR

        token = WRITER.set(resolve)
        try:
            await self.app(scope, receive, send)
        finally:
            WRITER.reset(token)
