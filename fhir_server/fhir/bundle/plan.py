"""Plan a transaction/batch Bundle before touching the store (bundle.html#transaction, http.html#trules).

Planning checks every entry's shape, parses its request URL, assigns ids to creates, maps ``urn:uuid:`` /
``urn:oid:`` (and other) fullUrls to the ids they will get, and orders the work the way the spec says:
DELETE, then POST, then PUT/PATCH, then GET/HEAD — while the response keeps the request order.

>>> parse_url("Patient/1/_history/2").kind
'vread'
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from fhir_server.fhir import registry
from fhir_server.fhir.outcome import BadRequest, FHIRError, Issue

ORDER = {"DELETE": 0, "POST": 1, "PUT": 2, "PATCH": 2, "GET": 3, "HEAD": 3}
METHODS = frozenset(ORDER)


@dataclass(frozen=True, slots=True)
class Target:
    """What a request URL addresses: ``kind`` is type | instance | vread | history | search | system."""

    kind: str
    resource_type: str | None = None
    id: str | None = None
    version: str | None = None
    query: str = ""


@dataclass(slots=True)
class PlannedEntry:
    index: int  # position in the request Bundle
    method: str
    url: str
    target: Target
    resource: dict[str, Any] | None
    full_url: str | None
    if_none_exist: str | None = None
    if_match: str | None = None
    if_none_match: str | None = None
    if_modified_since: str | None = None
    assigned_id: str | None = None  # for POST
    extra: dict[str, Any] = field(default_factory=dict)


def entry_error(index: int, exc: FHIRError) -> FHIRError:
    """Prefix an error with the entry it comes from, so the client can find it."""
    where = f"Bundle.entry[{index}]"
    if exc.diagnostics.startswith(where):
        return exc
    return FHIRError(exc.status, exc.code, f"{where}: {exc.diagnostics}", tuple(exc.expression) or (where,),
                     exc.extra_issues, exc.headers)


def parse_url(url: str) -> Target:
    """A relative request URL (``Patient``, ``Patient/1``, ``Patient?identifier=x``, ``Patient/1/_history/2``)."""
    split = urlsplit(url)
    if split.scheme or split.netloc:
        raise BadRequest(f"request.url must be relative to the server base, not {url!r}")
    path = split.path.strip("/")
    query = split.query
    parts = [p for p in path.split("/") if p] if path else []
    if not parts:
        return Target("system", query=query)
    rtype = parts[0]
    if rtype.startswith("$") or rtype in ("_history", "metadata"):
        return Target("system", None, rtype, query=query)
    if not registry.is_resource_type(rtype):
        raise FHIRError(404, "not-supported", f"{rtype!r} in request.url {url!r} is not an R4 resource type")
    if len(parts) == 1:
        return Target("search" if query else "type", rtype, query=query)
    if len(parts) == 2:
        if parts[1] == "_search":
            return Target("search", rtype, query=query)
        if parts[1] == "_history":
            return Target("history", rtype, query=query)
        return Target("instance", rtype, parts[1], query=query)
    if len(parts) == 3 and parts[2] == "_history":
        return Target("history", rtype, parts[1], query=query)
    if len(parts) == 4 and parts[2] == "_history":
        return Target("vread", rtype, parts[1], parts[3], query=query)
    if len(parts) == 3 and parts[2].startswith("$"):
        return Target("operation", rtype, parts[1], query=query)
    raise BadRequest(f"request.url {url!r} does not address a FHIR interaction")


_CONDITIONS = ("ifNoneExist", "ifMatch", "ifNoneMatch", "ifModifiedSince")


def _entry(index: int, raw: Any, new_id: Any) -> PlannedEntry:
    if not isinstance(raw, dict):
        raise BadRequest("each entry must be a JSON object", code="structure")
    request = raw.get("request")
    if not isinstance(request, dict):
        raise BadRequest("entry.request (method and url) is required in a transaction or batch", code="required")
    method, url = request.get("method"), request.get("url")
    if method not in METHODS:
        raise BadRequest(f"entry.request.method must be one of {', '.join(sorted(METHODS))}, not {method!r}",
                         code="code-invalid")
    if not isinstance(url, str) or not url:
        raise BadRequest("entry.request.url is required", code="required")
    target = parse_url(url)
    resource = raw.get("resource")
    if method in ("POST", "PUT", "PATCH") and not isinstance(resource, dict):
        raise BadRequest(f"a {method} entry needs a resource", code="required")
    if method == "POST" and target.kind != "type":
        raise BadRequest(f"POST must address a resource type, not {url!r}")
    if method in ("PUT", "PATCH") and target.kind not in ("instance", "search"):
        raise BadRequest(f"{method} must address a resource (Type/id) or a search (Type?criteria), not {url!r}")
    for name in _CONDITIONS:
        if not isinstance(request.get(name, ""), str):
            raise BadRequest(f"entry.request.{name} must be a string", code="structure")
    full_url = raw.get("fullUrl")
    planned = PlannedEntry(index, method, url, target, resource, full_url if isinstance(full_url, str) else None,
                           if_none_exist=request.get("ifNoneExist"), if_match=request.get("ifMatch"),
                           if_none_match=request.get("ifNoneMatch"), if_modified_since=request.get("ifModifiedSince"))
    if method == "POST" and target.kind == "type":
        planned.assigned_id = new_id()
    return planned


def plan(bundle: dict[str, Any], max_entries: int, new_id: Any) -> list[PlannedEntry]:
    """Check and plan every entry; raises at the first bad entry (a transaction fails as a whole)."""
    entries = bundle.get("entry") or []
    if not isinstance(entries, list):
        raise BadRequest("Bundle.entry must be an array", ["Bundle.entry"], code="structure")
    if len(entries) > max_entries:
        from fhir_server.fhir.outcome import PayloadTooLarge

        raise PayloadTooLarge(f"the Bundle has {len(entries)} entries; this server accepts at most {max_entries}")
    planned = []
    for i, raw in enumerate(entries):
        try:
            planned.append(_entry(i, raw, new_id))
        except FHIRError as exc:
            raise entry_error(i, exc) from None
    return planned


def check_duplicates(entries: list[PlannedEntry]) -> None:
    """Two entries may not touch the same resource (bundle.html#trules); fullUrls must be unique.

    Call it after conditional update/delete/patch targets are resolved: their resolved identities count too.
    """
    seen: dict[str, int] = {}
    urls: dict[str, int] = {}
    for e in entries:
        if e.full_url:
            if e.full_url in urls:
                raise BadRequest(f"Bundle.entry[{e.index}].fullUrl {e.full_url} repeats entry[{urls[e.full_url]}]",
                                 [f"Bundle.entry[{e.index}].fullUrl"], code="duplicate")
            urls[e.full_url] = e.index
        for key in _touched(e):
            if key in seen:
                raise BadRequest(f"Bundle.entry[{e.index}] and entry[{seen[key]}] both touch {key}",
                                 [f"Bundle.entry[{e.index}].request.url"], code="duplicate")
            seen[key] = e.index


def _touched(e: PlannedEntry) -> list[str]:
    """``Type/id`` of what a write entry changes, once conditional targets are resolved (GET/HEAD: nothing)."""
    if e.method in ("GET", "HEAD"):
        return []
    if e.target.kind == "instance":
        return [f"{e.target.resource_type}/{e.target.id}"]
    return [match.reference for match in e.extra.get("matches", ())]  # a conditional delete's matches


def execution_order(entries: list[PlannedEntry]) -> list[PlannedEntry]:
    return sorted(entries, key=lambda e: (ORDER[e.method], e.index))


def id_map(entries: list[PlannedEntry], base: str) -> dict[str, str]:
    """fullUrl → ``Type/id`` for entries whose resource will be created or updated here.

    Temporary ids (``urn:uuid:…``, ``urn:oid:…``) map to server-assigned ids; an absolute fullUrl on this
    server's base maps to its relative form.
    """
    mapping: dict[str, str] = {}
    for e in entries:
        if not e.full_url or e.resource is None:
            continue
        rtype = e.resource.get("resourceType")
        if e.method == "POST" and e.assigned_id:
            mapping[e.full_url] = f"{rtype}/{e.assigned_id}"
        elif e.method in ("PUT", "PATCH") and e.target.kind == "instance":
            mapping[e.full_url] = f"{e.target.resource_type}/{e.target.id}"
    if base:
        mapping = {k: v for k, v in mapping.items() if k != f"{base}/{v}"}
    return mapping


_REWRITTEN_KEYS = frozenset({"reference", "url"})


def rewrite_references(node: Any, mapping: dict[str, str], found: tuple[list[str], bool] | None = None) -> Any:
    """Replace temporary ids where the spec says: ``Reference.reference``, ``Attachment.url``, the narrative.

    >>> rewrite_references({"subject": {"reference": "urn:uuid:1"}}, {"urn:uuid:1": "Patient/9"})
    {'subject': {'reference': 'Patient/9'}}
    """
    if not mapping:
        return node
    values, narrative = found if found is not None else reference_values(node)
    if not narrative and mapping.keys().isdisjoint(values):
        return node  # nothing to rewrite: keep the client's dict rather than copy it
    return _rewrite(node, mapping)


def reference_values(node: Any) -> tuple[list[str], bool]:
    """Every ``reference`` and ``url`` string anywhere in ``node`` (contained resources too), and whether it has
    narrative (``div``). One walk without path strings: it tells :func:`rewrite_references` and
    :func:`conditional_references` whether their (copying, path-building) walks have anything to do.

    >>> reference_values({"subject": {"reference": "urn:uuid:1"}, "text": {"div": "<div/>"}})
    (['urn:uuid:1'], True)

    Callers that run both may pass the result as ``found`` to each (it describes ``node`` as it is).
    """
    found: list[str] = []
    narrative = _collect(node, found)
    return found, narrative


def _collect(node: Any, found: list[str]) -> bool:
    narrative = False
    if isinstance(node, dict):
        for key, value in node.items():
            if isinstance(value, str):
                if key in _REWRITTEN_KEYS:
                    found.append(value)
                elif key == "div":
                    narrative = True
            elif isinstance(value, dict | list):
                narrative = _collect(value, found) or narrative
    elif isinstance(node, list):
        for item in node:
            if isinstance(item, dict | list):
                narrative = _collect(item, found) or narrative
    return narrative


# a URL in narrative text: temporary ids and absolute URLs, up to a quote, space or tag
_NARRATIVE_URL = re.compile(r"""(?:urn:(?:uuid|oid):|https?://)[^\s"'<>]+""")


def _rewrite_narrative(div: str, mapping: dict[str, str]) -> str:
    """Replace whole URLs only: ``urn:oid:1.2.3`` must not be rewritten inside ``urn:oid:1.2.34``."""
    def replace(match: re.Match[str]) -> str:
        url = match.group(0)
        if url in mapping:
            return mapping[url]
        bare = url.rstrip(".,;:)")  # the end of a sentence is not part of the URL
        return mapping[bare] + url[len(bare):] if bare in mapping else url

    return _NARRATIVE_URL.sub(replace, div)


def _rewrite(node: Any, mapping: dict[str, str]) -> Any:
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key == "div" and isinstance(value, str):
                value = _rewrite_narrative(value, mapping)
            elif key in _REWRITTEN_KEYS and isinstance(value, str):
                value = mapping.get(value, value)
            elif isinstance(value, dict | list):
                value = _rewrite(value, mapping)
            out[key] = value
        return out
    if isinstance(node, list):
        return [_rewrite(v, mapping) for v in node]
    return node


def conditional_references(node: Any, path: str = "", found: tuple[list[str], bool] | None = None,
                           ) -> list[tuple[str, str]]:
    """References written as searches (``Patient?identifier=x``), to be resolved in the transaction.

    >>> conditional_references({"subject": {"reference": "Patient?identifier=http://h.org/mrn|7"}}, "Observation")
    [('Observation.subject.reference', 'Patient?identifier=http://h.org/mrn|7')]
    """
    values, _ = found if found is not None else reference_values(node)
    if not any("?" in v for v in values):
        return []  # the common case: no search-style reference, so no path-building walk
    return _conditional_references(node, path)


def _conditional_references(node: Any, path: str) -> list[tuple[str, str]]:
    found = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "reference" and isinstance(value, str) and registry.is_resource_type(value.partition("?")[0]) \
                    and "?" in value:
                found.append((f"{path}.reference", value))
            elif isinstance(value, dict | list):
                found += _conditional_references(value, f"{path}.{key}" if path else key)
    elif isinstance(node, list):
        for i, item in enumerate(node):
            found += _conditional_references(item, f"{path}[{i}]")
    return found


def replace_references(node: Any, mapping: dict[str, str]) -> Any:
    """Replace ``reference`` values found in ``mapping`` (resolved conditional references)."""
    if isinstance(node, dict):
        return {k: (mapping.get(v, v) if k == "reference" and isinstance(v, str) else replace_references(v, mapping))
                for k, v in node.items()}
    if isinstance(node, list):
        return [replace_references(v, mapping) for v in node]
    return node


def issue_for(index: int, exc: FHIRError) -> list[Issue]:
    return entry_error(index, exc).issues
