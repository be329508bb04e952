"""Extended operations (``$name``) at system, type and instance level, looked up in one registry.

Features register their operations here (``$validate``, ``$decide`` …); the CapabilityStatement lists exactly
what is registered.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response

from fhir_server.fhir.outcome import MethodNotAllowed, NotFound

Handler = Callable[..., Awaitable[Response]]


@dataclass(frozen=True)
class Operation:
    name: str  # without the "$"
    level: str  # system | type | instance
    resource_types: tuple[str, ...]  # ("*",) for every type
    methods: tuple[str, ...]
    handler: Handler
    definition: str = ""


_REGISTRY: dict[tuple[str, str], Operation] = {}


def register(op: Operation) -> None:
    _REGISTRY[(op.level, op.name)] = op


def registered() -> list[Operation]:
    return list(_REGISTRY.values())


async def dispatch(request: Request, level: str, name: str, rtype: str | None = None,
                   id: str | None = None) -> Response:
    op = _REGISTRY.get((level, name.removeprefix("$")))
    if op is None or (rtype is not None and "*" not in op.resource_types and rtype not in op.resource_types):
        where = f" on {rtype}" if rtype else ""
        raise NotFound(f"operation {name}{where} is not supported by this server", code="not-supported")
    if request.method not in op.methods:
        raise MethodNotAllowed(f"{name} does not accept {request.method}")
    args = [a for a in (rtype, id) if a is not None]
    return await op.handler(request, *args)
