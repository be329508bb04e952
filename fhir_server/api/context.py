"""Per-request access to the server's wiring (settings, store) and the public base URL."""

from __future__ import annotations

from dataclasses import dataclass, field

from starlette.requests import Request

from fhir_server.consent.gate import Gate
from fhir_server.fhir import registry
from fhir_server.fhir.outcome import BadRequest, NotFound
from fhir_server.repository.writebehind import WriteBehind
from fhir_server.security.caller import ADMINISTRATOR, Caller
from fhir_server.settings import Settings
from fhir_server.store.base import Store


@dataclass
class Server:
    """What ``create_app`` wires together; handlers reach it through ``request.app.state.server``."""

    settings: Settings
    store: Store
    audit: WriteBehind | None = None
    gate: Gate = field(init=False)

    def __post_init__(self) -> None:
        self.gate = Gate(self.store, self.settings)


def server(request: Request) -> Server:
    return request.app.state.server  # type: ignore[no-any-return]


def caller(request: Request) -> Caller:
    """The verified caller of this request (set by the authentication edge); an administrator when auth is off."""
    found = getattr(request.state, "caller", None)
    return found if isinstance(found, Caller) else ADMINISTRATOR


def base_url(request: Request) -> str:
    """The FHIR base for absolute URLs: the configured public URL, else the one the client called."""
    configured = server(request).settings.base_url
    if configured:
        return configured
    return str(request.base_url).rstrip("/") + "/fhir"


def resource_type(name: str) -> str:
    if not registry.is_resource_type(name):
        raise NotFound(f"{name!r} is not a FHIR R4 resource type supported by this server", code="not-supported")
    return name


def whole_number(text: str) -> int | None:
    """ASCII digits that fit a 64-bit store column → int; anything else (``"²"``, ``"-1"``, 10**30) → None.

    >>> whole_number("42"), whole_number("²"), whole_number("9" * 30)
    (42, None, None)
    """
    if not (text.isascii() and text.isdigit()) or len(text) > 18:
        return None
    return int(text)


def version_from_etag(value: str, header: str) -> int:
    """``W/"3"`` (or ``"3"``, ``3``) → 3; anything else is a 400 naming the header."""
    text = value.strip()
    if text.startswith("W/"):
        text = text[2:]
    version = whole_number(text.strip('"'))
    if version is None:
        raise BadRequest(f'{header} must be a version ETag like W/"3", not {value!r}', [header])
    return version
