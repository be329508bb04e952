"""What each route needs (ACCESS.md §A): a pure map from method + path to (resource type, SMART letter), checked
against the caller's scopes *before* anything is looked up, so a refusal reveals nothing about what is stored.

read/vread/history → ``r``; search → ``s``; create → ``c``; update/patch → ``u``; delete → ``d``; each entry of
a transaction or batch is checked the same way (:func:`check_bundle`). Operations have their own table
(:data:`OPERATIONS`; features may :func:`register_operation`), by default ``r`` on the type they are called on.

>>> required("GET", "/fhir/Patient/1", b"").types, required("GET", "/fhir/Patient/1", b"").letter
(('Patient',), 'r')
>>> required("POST", "/fhir/Consent/$decide", b"").letter, required("GET", "/fhir/metadata", b"").public
('r', True)
>>> required("GET", "/app/js/main.js", b"").public, required("GET", "/ascmi/consents/1/summary", b"").letter
(True, 'r')
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from fhir_server.fhir import registry
from fhir_server.security.caller import Caller
from fhir_server.security.errors import Forbidden


@dataclass(frozen=True, slots=True)
class Need:
    """``types`` × ``letter`` must all be allowed; ``public`` needs no token; ``admin`` needs an administrator."""

    interaction: str
    types: tuple[str, ...] = ()
    letter: str = ""
    public: bool = False
    admin: bool = False
    id: str | None = None


PUBLIC = Need("public", public=True)
AUTHENTICATED = Need("other")
# name → (resource type it needs, or None for the type it is called on; letter)
OPERATIONS: dict[str, tuple[str | None, str]] = {
    "decide": ("Consent", "r"),
    "recordDisclosure": ("Consent", "r"),
    "fileConsent": ("Consent", "c"),
    "revokeConsent": ("Consent", "c"),
    "validate": (None, "r"),
    "expand": ("ValueSet", "r"),
    "validate-code": (None, "r"),
    "lookup": ("CodeSystem", "r"),
    "subsumes": ("CodeSystem", "r"),
    "translate": ("ConceptMap", "r"),
    "export": (None, ""),  # Bulk Data: the export request checks each type it names (fhir_server/bulk/)
}
_BY_METHOD = {"GET": ("search", "s"), "POST": ("create", "c"), "PUT": ("update", "u"), "PATCH": ("patch", "u"),
              "DELETE": ("delete", "d")}
_INSTANCE = {"GET": ("read", "r"), "PUT": ("update", "u"), "PATCH": ("patch", "u"), "DELETE": ("delete", "d")}


def register_operation(name: str, resource_type: str | None, letter: str) -> None:
    """A feature's operation and what it needs (``None``: the letter on the type it is called on; letter ``""``:
    only a valid token here, the operation checks scopes itself)."""
    OPERATIONS[name.removeprefix("$")] = (resource_type, letter)


def _operation(name: str, rtype: str | None) -> Need:
    fixed, letter = OPERATIONS.get(name.removeprefix("$"), (None, "r"))
    if not letter:
        return Need("export" if name == "$export" else "operation")
    return Need("operation", (fixed or rtype or "*",), letter)


def _types_param(query: bytes) -> tuple[str, ...]:
    found = [v for k, v in parse_qsl(query.decode("latin-1")) if k == "_type"]
    types = tuple(t.strip() for v in found for t in v.split(",") if t.strip())
    return types or ("*",)


def required(method: str, path: str, query: bytes) -> Need:
    """What a request needs; paths outside the table need only a valid token (they answer 404 anyway)."""
    parts = [p for p in path.split("/") if p]
    if not parts:
        return AUTHENTICATED
    head, n = parts[0], len(parts)
    if head in ("health", "metrics"):  # probes and Prometheus have no SMART token (FHIR_METRICS_TOKEN guards /metrics)
        return PUBLIC if method in ("GET", "HEAD") else AUTHENTICATED
    if head == "cds-services":
        if n == 1 and method == "GET":
            return PUBLIC
        return Need("operation", ("Consent",), "r") if n == 2 and method == "POST" else AUTHENTICATED
    if head == "ascmi":
        if method in ("GET", "HEAD"):  # the plain-language summary of a Consent: a read, through the gate
            return Need("read", ("Consent",), "r")
        return Need("operation", ("Consent",), "c")  # intake: ownership is checked by the handler
    if head == "app" and method in ("GET", "HEAD"):  # the Care Partner page's static files (docs/app.md)
        return PUBLIC
    if head == "admin":
        return Need("admin", admin=True)
    if head == "docs" and n == 1 and method in ("GET", "HEAD"):  # the API page (docs/implementers.md)
        return PUBLIC
    if head != "fhir":
        return AUTHENTICATED
    rest = parts[1:]
    if rest == ["metadata"] and method in ("GET", "HEAD"):
        return PUBLIC
    if rest == [".well-known", "smart-configuration"] and method in ("GET", "HEAD"):
        return PUBLIC
    if rest in (["auth", "token"], ["auth", "revoke"]) and method == "POST":
        return PUBLIC
    if rest == ["auth", "authorize"] and method in ("GET", "HEAD", "POST"):  # the login page (people)
        return PUBLIC
    if _for_implementers(rest) and method in ("GET", "HEAD"):
        return PUBLIC
    return _fhir(method, rest, query)


def _for_implementers(rest: list[str]) -> bool:
    """The OpenAPI document, the API page and the FHIR package: public like ``/metadata`` (no patient data)."""
    return rest == ["openapi.json"] or (bool(rest) and rest[0] == "swagger-ui") or (
        len(rest) == 3 and rest[0] == "ImplementationGuide" and rest[2] == "package.tgz")


def _fhir(method: str, rest: list[str], query: bytes) -> Need:
    if method == "HEAD":  # Starlette answers HEAD on every GET route: it needs what the GET needs
        method = "GET"
    n = len(rest)
    if n == 0:
        return Need("search-system", _types_param(query), "s") if method == "GET" else Need("transaction")
    rtype = rest[0]
    if rtype == "_history":
        return Need("history", ("*",), "r") if n == 1 else AUTHENTICATED
    if rtype.startswith("$"):
        return _operation(rtype, None)
    if not registry.is_resource_type(rtype):  # another feature's route (bulk-status …) or a 404
        return AUTHENTICATED
    if n == 1:
        if method not in _BY_METHOD:
            return AUTHENTICATED
        interaction, letter = _BY_METHOD[method]
        return Need(interaction, (rtype,), letter)
    second = rest[1]
    if n == 2 and second == "_history":
        return Need("history", (rtype,), "r")
    if n == 2 and second == "_search":
        return Need("search", (rtype,), "s")
    if second.startswith("$"):
        return _operation(second, rtype)
    if n == 2:
        if method not in _INSTANCE:
            return AUTHENTICATED
        interaction, letter = _INSTANCE[method]
        return Need(interaction, (rtype,), letter, id=second)
    if rest[2] == "_history":
        return Need("vread" if n == 4 else "history", (rtype,), "r", id=second)
    if rest[2].startswith("$"):
        return _operation(rest[2], rtype)
    return AUTHENTICATED


PROTECTED_TYPES = frozenset({"Consent", "Organization", "OrganizationAffiliation"})
_WRITES = frozenset({"create", "update", "patch", "delete"})


def check(caller: Caller, need: Need) -> None:
    """Raise :class:`Forbidden` unless ``caller`` may do what ``need`` says.

    A Care Partner may not write Consent, Organization or OrganizationAffiliation through plain FHIR (ACCESS.md
    §B): an Organization's type, state and covered-entity flag steer decisions, and consents come through intake,
    FAST operations and expiration events, which check that the Care Partner files for itself."""
    if need.admin and not caller.is_administrator:
        raise Forbidden("only administrator clients may manage clients")
    if not caller.is_administrator and need.interaction in _WRITES:
        for rtype in need.types:
            if rtype in PROTECTED_TYPES:
                raise Forbidden(f"a Care Partner client may not {need.interaction} {rtype} resources through plain "
                                "FHIR: file consents with POST /ascmi/forms, /ascmi/revocations, "
                                "/ascmi/expiration-events or Consent/$fileConsent and $revokeConsent")
    for rtype in need.types:
        if not caller.allows(rtype, need.letter):
            raise Forbidden(f"the access token does not allow this {need.interaction} on {rtype}: it needs the "
                            f"scope system/{rtype}.{need.letter} (or system/*.{need.letter})")


def bundle_needs(bundle: dict[str, Any]) -> Iterable[Need]:
    """The need of each entry of a transaction or batch Bundle (entries the processor will reject anyway, for
    a missing or unusable ``request``, are skipped here)."""
    for entry in bundle.get("entry") or []:
        request = entry.get("request") if isinstance(entry, dict) else None
        if not isinstance(request, dict):
            continue
        method, url = request.get("method"), request.get("url")
        if not isinstance(method, str) or not isinstance(url, str):
            continue
        parts = urlsplit(url)
        path = parts.path
        if "/fhir/" in path:  # an absolute URL on this server's base
            path = path.split("/fhir/", 1)[1]
        need = _fhir(method.upper(), [p for p in path.split("/") if p], parts.query.encode())
        yield need


def check_bundle(caller: Caller, bundle: dict[str, Any]) -> None:
    """Every entry of a transaction or batch is checked before any of them runs."""
    for need in bundle_needs(bundle):
        check(caller, need)
