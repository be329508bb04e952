"""Bundle rules beyond the bdl-* invariants: entry urls, links, search sets, and references inside the Bundle.

From bundle.html, references.html#bundle-references and documents.html/messaging.html, as the HL7 Java validator
(BundleValidator) applies them to R4:

* every entry but those of a transaction/batch (or their responses) has a ``fullUrl``; it is absolute, and when it
  is a RESTful url of the entry's resource type it ends with that resource's ``Type/id``;
* links: first/previous/next/last belong to search sets and histories only; a relation appears once;
* a document must carry what its Composition refers to (subject, author, encounter, custodian, attester.party,
  event.detail, section author/focus/entry), a message what its MessageHeader focuses on; every entry of a
  document is reachable from the Composition (a message's stray entries are a warning);
* a search set's matches and includes have ids, matches are of the searched type, outcomes are OperationOutcomes;
* a ``urn:uuid:``/``urn:oid:`` reference can only resolve inside the Bundle: one no entry carries is a warning.

References resolve as references.html says: an absolute one by ``fullUrl``; a relative one against the base of the
entry's RESTful ``fullUrl`` (``http://x/fhir/Patient/1`` + ``Organization/2`` → ``http://x/fhir/Organization/2``),
or by type and id when the entry has no RESTful fullUrl.

>>> b = {"resourceType": "Bundle", "type": "document", "entry": [{"fullUrl": "urn:uuid:0", "resource": {
...     "resourceType": "Composition", "subject": {"reference": "Patient/666"}}}]}
>>> [i.diagnostics for i in check_bundle(b, "Bundle") if i.severity == "error"]
["Can't find 'Patient/666' in the bundle (Composition.subject)"]
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..outcome import Issue

_ABSOLUTE = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:")
# Java's RESTful-url test (Constants.URI_REGEX): optional http(s) base, then Type/id[/_history/v]
_RESTFUL = re.compile(
    r"^(?P<base>(?:https?://(?:[A-Za-z0-9\\.:%$]*/)*)?)(?P<type>[A-Z][A-Za-z]+)/(?P<id>[A-Za-z0-9\-.]{1,64})"
    r"(?:/_history/[A-Za-z0-9\-.]{1,64})?$"
)
_NO_FULL_URL = frozenset({"transaction", "transaction-response", "batch", "batch-response"})
_PAGING = ("first", "previous", "next", "last")
IsResourceType = Callable[[str], bool]


@dataclass(slots=True)
class _Entry:
    index: int
    full_url: str | None
    resource: Mapping[str, Any]
    targets: set[int] = field(default_factory=set)


def _list(value: Any) -> list[Any]:
    if isinstance(value, list):
        return value
    return [] if value is None else [value]


class _Index:
    """Where each entry can be found: by fullUrl, and by Type/id."""

    def __init__(self, bundle: Mapping[str, Any]) -> None:
        self.entries: list[_Entry] = []
        self.by_url: dict[str, list[int]] = {}
        self.by_type_id: dict[str, list[int]] = {}
        for i, entry in enumerate(_list(bundle.get("entry"))):
            if not isinstance(entry, dict):
                continue
            full = entry.get("fullUrl") if isinstance(entry.get("fullUrl"), str) else None
            res = entry.get("resource")
            if full is not None:
                self.by_url.setdefault(full.split("/_history/")[0], []).append(i)
            if isinstance(res, dict):
                self.entries.append(_Entry(i, full, res))
                if isinstance(res.get("id"), str):
                    self.by_type_id.setdefault(f"{res.get('resourceType')}/{res['id']}", []).append(i)

    def resolve(self, ref: str, full_url: str | None, entry: _Entry | None = None) -> int | None:
        """The entry index ``ref`` (read from ``entry``, whose fullUrl is ``full_url``) points at, else None.

        references.html#bundle-references: an absolute reference is a fullUrl; a relative one is read against
        the base of the entry's own RESTful fullUrl (one that ends with its Type/id), and only that way."""
        ref = ref.split("/_history/")[0].split("#")[0]
        if _ABSOLUTE.match(ref):
            found = self.by_url.get(ref)
        else:
            base = _restful_base(full_url, entry.resource if entry is not None else None)
            found = self.by_url.get(base + ref) if base is not None else None
        return found[0] if found else None

    def apparent(self, ref: str) -> list[str]:
        """fullUrls of entries a relative ``Type/id`` seems to mean but does not resolve to (another base)."""
        found = self.by_type_id.get(ref.split("/_history/")[0]) or []
        by_index = {e.index: e for e in self.entries}
        return sorted(by_index[i].full_url or "<missing>" for i in found if i in by_index)


def _restful_base(full_url: str | None, resource: Mapping[str, Any] | None) -> str | None:
    """``http://x/fhir/`` of ``http://x/fhir/Patient/1`` when that fullUrl names this resource, else None."""
    if not full_url or resource is None or not _RESTFUL.match(full_url):
        return None
    tail = f"{resource.get('resourceType')}/{resource.get('id')}"
    return full_url[: -len(tail)] if full_url.endswith(tail) else None


def check_bundle(bundle: Mapping[str, Any], path: str, is_resource_type: IsResourceType | None = None) -> list[Issue]:
    issues: list[Issue] = []
    add: Callable[[str, str, str, str], None] = lambda sev, code, msg, where: issues.append(  # noqa: E731
        Issue(sev, code, msg, (where,)))
    raw_type = bundle.get("type")
    btype: str = raw_type if isinstance(raw_type, str) else ""
    index = _Index(bundle)
    _links(bundle, btype, path, add)
    _entries(bundle, btype, path, add, is_resource_type)
    entries = [e for e in _list(bundle.get("entry")) if isinstance(e, dict)]
    if btype in ("document", "message"):
        if not entries:
            add("error", "invalid", f"A {btype} must have at least one entry", path)
        else:
            reported: set[str] = set()
            _first_entry(entries[0], index, btype, path, add, reported)
            _interlinked(index, btype, path, add, reported)
    elif btype == "searchset":
        _search_set(bundle, path, add)
    if btype not in ("searchset", "history", "batch-response", "transaction-response"):
        by_index = {e.index: e for e in index.entries}
        for e in index.entries:
            for ref, ref_path in _references(e.resource, f"{path}.entry[{e.index}].resource"):
                target = index.resolve(ref, e.full_url, e)
                if target is None:
                    if ref.startswith(("urn:uuid:", "urn:oid:")):
                        add("warning", "not-found", f"URN reference is not locally contained within the bundle "
                            f"{ref}", ref_path)
                    continue
                # a Type/id reference that resolves to an entry of another type names the wrong resource
                m = _RESTFUL.match(ref.split("/_history/")[0])
                found = by_index.get(target)
                if m and found is not None and found.resource.get("resourceType") != m.group("type"):
                    add("error", "invalid", f"Matching reference for reference {ref} has resourceType "
                        f"{found.resource.get('resourceType')}", ref_path)
    return issues


# -- entries and links --------------------------------------------------------------------------------------


def _entries(bundle: Mapping[str, Any], btype: str, path: str, add: Callable[..., None],
             is_resource_type: IsResourceType | None) -> None:
    for i, entry in enumerate(_list(bundle.get("entry"))):
        if not isinstance(entry, dict):
            continue
        where = f"{path}.entry[{i}]"
        full = entry.get("fullUrl")
        res = entry.get("resource") if isinstance(entry.get("resource"), dict) else None
        rtype = res.get("resourceType") if res is not None else None
        rid = res.get("id") if res is not None and isinstance(res.get("id"), str) else None
        if isinstance(full, str) and full:
            if not _ABSOLUTE.match(full):
                add("error", "invalid", f"The fullUrl must be an absolute URL (not '{full}')", where)
            elif isinstance(rtype, str) and (m := _RESTFUL.match(full)) and _known(m.group("type"), is_resource_type):
                if rid is None:
                    add("error", "invalid", f"The fullUrl '{full}' looks like a RESTful server URL, so the resource "
                        "must have an id", where)
                elif not full.split("/_history/")[0].endswith(f"/{rtype}/{rid}") and full.split("/_history/")[0] != (
                        f"{rtype}/{rid}"):
                    add("error", "invalid", f"The fullUrl '{full}' looks like a RESTful server URL, so it must end "
                        f"with the correct type and id (/{rtype}/{rid})", where)
        url = res.get("url") if res is not None else None
        if isinstance(url, str) and url == full and not (_RESTFUL.match(url) and rid and url.endswith("/" + rid)):
            add("error", "invalid", f"The canonical URL ({url}) cannot match the fullUrl ({full}) unless the "
                f"resource id ({rid}) also matches", where)
        if btype not in _NO_FULL_URL and not (isinstance(full, str) and full):
            add("error", "invalid", "Except for transactions and batches, each entry in a Bundle must have a "
                "fullUrl which is the identity of the resource in the entry", where)


def _known(rtype: str, is_resource_type: IsResourceType | None) -> bool:
    return is_resource_type(rtype) if is_resource_type is not None else True


def _links(bundle: Mapping[str, Any], btype: str, path: str, add: Callable[..., None]) -> None:
    seen: set[str] = set()
    for i, link in enumerate(_list(bundle.get("link"))):
        rel = link.get("relation") if isinstance(link, dict) else None
        if not isinstance(rel, str):
            continue
        where = f"{path}.link[{i}]"
        if btype in ("searchset", "history"):
            if rel in (*_PAGING, "self") and rel in seen:
                add("error", "invalid", f"The link relation '{rel}' may only appear once", where)
        elif btype:
            if rel in _PAGING:
                add("error", "invalid", f"The link relation '{rel}' is only allowed on search results", f"{where}"
                    ".relation")
            elif rel == "self" and rel in seen:
                add("error", "invalid", "The link relation 'self' may only appear once", f"{where}.relation")
        seen.add(rel)


# -- documents and messages ---------------------------------------------------------------------------------


# Canonical resource types: a RESTful url of one of these names a definition, which need not travel in the Bundle
_CANONICAL_TYPES = frozenset({
    "ActivityDefinition", "CapabilityStatement", "ChargeItemDefinition", "CodeSystem", "CompartmentDefinition",
    "ConceptMap", "EffectEvidenceSynthesis", "EventDefinition", "Evidence", "EvidenceVariable", "ExampleScenario",
    "GraphDefinition", "ImplementationGuide", "Library", "Measure", "MessageDefinition", "NamingSystem",
    "OperationDefinition", "PlanDefinition", "Questionnaire", "ResearchDefinition", "ResearchElementDefinition",
    "RiskEvidenceSynthesis", "SearchParameter", "StructureDefinition", "StructureMap", "TerminologyCapabilities",
    "TestScript", "ValueSet",
})


def _canonical_url(ref: str) -> bool:
    m = _RESTFUL.match(ref) if _ABSOLUTE.match(ref) else None
    return bool(m and m.group("type") in _CANONICAL_TYPES)


def _not_found(index: _Index, ref: str, label: str) -> str:
    seems = index.apparent(ref) if not _ABSOLUTE.match(ref) else []
    if seems:
        return (f"Can't find '{ref}' in the bundle ({label}): the resource with that type and id in the bundle "
                f"has the fullUrl {', '.join(seems)}, and a relative reference only resolves against the base "
                "of the entry's own RESTful fullUrl")
    return f"Can't find '{ref}' in the bundle ({label})"


def _first_entry(entry: Mapping[str, Any], index: _Index, btype: str, path: str, add: Callable[..., None],
                 reported: set[str]) -> None:
    res = entry.get("resource")
    if not isinstance(res, dict):
        add("error", "invalid", f"The first entry of a {btype} must have a resource", f"{path}.entry[0]")
        return
    want = "Composition" if btype == "document" else "MessageHeader"
    where = f"{path}.entry[0].resource"
    if res.get("resourceType") != want:
        add("error", "invalid", f"The first entry in a {btype} must be a {want}", where)
        return
    full = entry.get("fullUrl") if isinstance(entry.get("fullUrl"), str) else None
    first = next((e for e in index.entries if e.index == 0), None)
    targets: list[tuple[Any, str, str]] = []
    if btype == "document":
        for name, many in (("subject", False), ("author", True), ("encounter", False), ("custodian", False)):
            targets += _refs(res, name, many, where, f"Composition.{name}")
        for parent, name, many in (("attester", "party", False), ("event", "detail", True)):
            for n, part in enumerate(_list(res.get(parent))):
                if isinstance(part, dict):
                    targets += _refs(part, name, many, f"{where}.{parent}[{n}]", f"Composition.{parent}.{name}")
        targets += _sections(res.get("section"), f"{where}.section")
    else:
        targets += _refs(res, "focus", True, where, "MessageHeader Data")
    for value, ref_path, label in targets:
        ref = value.get("reference") if isinstance(value, dict) else None
        if isinstance(ref, str) and ref and not ref.startswith("#") and index.resolve(ref, full, first) is None:
            if not _canonical_url(ref):
                add("error", "invalid", _not_found(index, ref, label), f"{ref_path}.reference")
                reported.add(f"{ref_path}.reference")


def _refs(node: Mapping[str, Any], name: str, many: bool, path: str, label: str) -> list[tuple[Any, str, str]]:
    value = node.get(name)
    if isinstance(value, list):
        items = [(v, f"{path}.{name}[{n}]") for n, v in enumerate(value)]
        return [(v, p, label) for v, p in (items if many else items[:1])]
    return [(value, f"{path}.{name}", label)] if value is not None else []


def _sections(sections: Any, path: str) -> list[tuple[Any, str, str]]:
    out: list[tuple[Any, str, str]] = []
    for n, section in enumerate(_list(sections)):
        if not isinstance(section, dict):
            continue
        here = f"{path}[{n}]"
        out += _refs(section, "author", True, here, "Section.author")
        out += _refs(section, "focus", False, here, "Section.focus")
        out += [(e, f"{here}.entry[{m}]", "Section Entry") for m, e in enumerate(_list(section.get("entry")))]
        out += _sections(section.get("section"), f"{here}.section")
    return out


def _interlinked(index: _Index, btype: str, path: str, add: Callable[..., None], reported: set[str]) -> None:
    """Every entry of a document (or message) is reached from the first one, following references either way.
    A relative reference that only seems to mean an entry (same Type/id, another base) is an error here too."""
    if not index.entries:
        return
    by_index = {e.index: e for e in index.entries}
    for e in index.entries:
        for ref, ref_path in _link_values(e.resource, f"{path}.entry[{e.index}].resource"):
            target = index.resolve(ref, e.full_url, e)
            if target is not None and target != e.index and target in by_index:
                e.targets.add(target)
            elif target is None and ref_path not in reported and not _ABSOLUTE.match(ref) and index.apparent(ref):
                reported.add(ref_path)
                add("error", "invalid", _not_found(index, ref, ref_path.rsplit(".", 1)[0]), ref_path)
    visited: set[int] = set()

    def visit(i: int) -> None:
        stack = [i]
        while stack:
            current = stack.pop()
            if current not in visited:
                visited.add(current)
                stack.extend(by_index[current].targets)

    visit(index.entries[0].index)
    grew = True
    while grew:  # an entry that points into the reached ones (a Provenance, say) is reached backwards
        grew = False
        for e in index.entries:
            if e.index not in visited and e.targets & visited:
                if btype == "document" and e.resource.get("resourceType") != "Provenance":
                    add("warning", "invalid", f"The entry {_name(e)} is only reached from the Composition by "
                        "references back into the document", f"{path}.entry[{e.index}]")
                visit(e.index)
                grew = True
    for e in index.entries:
        if e.index not in visited:
            if btype == "document":
                add("error", "informational", f"Entry {_name(e)} isn't reachable by traversing links (forward or "
                    "backward) from the Composition", f"{path}.entry[{e.index}]")
            else:
                add("warning", "informational", f"Entry {_name(e)} isn't reachable by traversing links (forward or "
                    "backward) from the MessageHeader", f"{path}.entry[{e.index}]")


def _name(e: _Entry) -> str:
    return f"'{e.full_url}'" if e.full_url else ""


def _link_values(value: Any, path: str) -> Iterator[tuple[str, str]]:
    """(reference or url-ish string, its FHIRPath) anywhere in a resource (not into nested Bundles)."""
    if isinstance(value, dict):
        if value.get("resourceType") == "Bundle":
            return
        for key, child in value.items():
            if key in ("reference", "url") and isinstance(child, str) and not child.startswith("#"):
                yield child, f"{path}.{key}"
            elif isinstance(child, dict):
                yield from _link_values(child, f"{path}.{key}")
            elif isinstance(child, list):
                for i, item in enumerate(child):
                    yield from _link_values(item, f"{path}.{key}[{i}]")


def _references(value: Any, path: str) -> Iterator[tuple[str, str]]:
    """(reference string, FHIRPath of the Reference) everywhere under ``value`` (not into contained)."""
    if isinstance(value, dict):
        ref = value.get("reference")
        if isinstance(ref, str):
            yield ref, path
        for key, child in value.items():
            if key in ("contained", "reference") or key.startswith("_"):
                continue
            if isinstance(child, list):
                for i, item in enumerate(child):
                    yield from _references(item, f"{path}.{key}[{i}]")
            elif isinstance(child, dict):
                yield from _references(child, f"{path}.{key}")


# -- search sets --------------------------------------------------------------------------------------------


def _search_set(bundle: Mapping[str, Any], path: str, add: Callable[..., None]) -> None:
    entries = [(i, e) for i, e in enumerate(_list(bundle.get("entry"))) if isinstance(e, dict)]
    self_url = next((link.get("url") for link in _list(bundle.get("link"))
                     if isinstance(link, dict) and link.get("relation") == "self"), None)
    types = _searched_types(self_url) if isinstance(self_url, str) else []
    if self_url is None:
        add("warning", "invalid", "SearchSet Bundles should have a self link that specifies what the search was", path)
    modes = [(e.get("search") or {}).get("mode") if isinstance(e.get("search"), dict) else None for _, e in entries]
    if entries and all(m is None for m in modes):
        return  # only warnings and hints in Java for a search set without modes
    for (i, entry), mode in zip(entries, modes, strict=True):
        where = f"{path}.entry[{i}]"
        res = entry.get("resource")
        if mode is None:
            add("warning", "invalid", "SearchSet bundles should have search modes on the entries", where)
        if not isinstance(res, dict):
            add("error", "invalid", "Search results must have resources", where)
            continue
        rtype = res.get("resourceType")
        if mode in ("match", "include") and not isinstance(res.get("id"), str):
            add("error", "invalid", "Search results must have ids", f"{where}.resource")
        if mode == "match" and types and rtype not in types:
            add("error", "invalid", f"This is not a matching resource type for the specified search ({rtype} "
                f"expecting {types})", f"{where}.resource")
        elif mode == "outcome" and rtype != "OperationOutcome":
            add("error", "invalid", f"This is not an OperationOutcome ({rtype})", f"{where}.resource")


def _searched_types(url: str) -> list[str]:
    head, _, query = url.partition("?")
    last = head.rstrip("/").rsplit("/", 1)[-1]
    if last[:1].isupper() and last.isalpha():
        return [last]
    for part in query.split("&"):
        if part.startswith("_type="):
            return [t for t in part[6:].split(",") if t]
    return []
