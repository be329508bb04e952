"""Bundle rules beyond the bdl-* invariants: entry urls and references resolved inside the Bundle.

From bundle.html and references.html#bundle-references, as the HL7 Java validator applies them:

* ``fullUrl`` is absolute; when it is a RESTful url it names the entry's resource, so its last ``Type/id``
  matches the resource (``Patient/1`` as fullUrl of ``Patient`` with id ``2`` is an error);
* a reference in an entry resolves against the Bundle first: ``urn:uuid:``/``urn:oid:`` references only ever
  can, so one that no entry carries is a warning; a relative ``Type/id`` is read against the entry's fullUrl
  base (``http://x/fhir/Patient/1`` + ``Organization/2`` → ``http://x/fhir/Organization/2``);
* a document Bundle must carry what its Composition refers to, and a message what its MessageHeader focuses
  on (documents and messages are self-contained): a missing target there is an error.

>>> b = {"resourceType": "Bundle", "type": "document", "entry": [{"fullUrl": "urn:uuid:0", "resource": {
...     "resourceType": "Composition", "subject": {"reference": "Patient/666"}}}]}
>>> [i.diagnostics for i in check_bundle(b, "Bundle")]
["Can't find 'Patient/666' in the bundle (Composition.subject)"]
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from ..outcome import Issue

_RESTFUL = re.compile(r"^(?P<base>.*?)/?(?P<type>[A-Z][A-Za-z]+)/(?P<id>[A-Za-z0-9\-.]{1,64})(?:/_history/[^/]+)?$")
_ABSOLUTE = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:")

# Elements of a Composition / MessageHeader whose targets a document / message must carry (Java's list)
_DOCUMENT_REFS: tuple[tuple[str, ...], ...] = (
    ("subject",), ("encounter",), ("author",), ("attester", "party"), ("custodian",), ("event", "detail"),
)
_MESSAGE_REFS: tuple[tuple[str, ...], ...] = (("focus",),)


def _list(value: Any) -> list[Any]:
    if isinstance(value, list):
        return value
    return [] if value is None else [value]


def _entries(bundle: Mapping[str, Any]) -> Iterator[tuple[int, Mapping[str, Any], Mapping[str, Any] | None]]:
    for i, entry in enumerate(_list(bundle.get("entry"))):
        if isinstance(entry, dict):
            res = entry.get("resource")
            yield i, entry, res if isinstance(res, dict) else None


def _keys(bundle: Mapping[str, Any]) -> tuple[set[str], set[str]]:
    """(every fullUrl, every ``Type/id`` of an entry resource) of the Bundle."""
    urls: set[str] = set()
    local: set[str] = set()
    for _, entry, res in _entries(bundle):
        full = entry.get("fullUrl")
        if isinstance(full, str):
            urls.add(full)
        if res is not None and isinstance(res.get("id"), str):
            local.add(f"{res.get('resourceType')}/{res['id']}")
    return urls, local


def _resolves(ref: str, base_url: str | None, urls: set[str], local: set[str]) -> bool:
    ref = ref.split("/_history/")[0]
    if ref in urls:
        return True
    if _ABSOLUTE.match(ref):
        return any(u.split("/_history/")[0] == ref for u in urls)
    if base_url:
        m = _RESTFUL.match(base_url)
        if m and f"{m.group('base')}/{ref}" in urls:
            return True
    return ref in local


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


def check_bundle(bundle: Mapping[str, Any], path: str) -> list[Issue]:
    issues: list[Issue] = []
    urls, local = _keys(bundle)
    btype = bundle.get("type")
    for i, entry, res in _entries(bundle):
        where = f"{path}.entry[{i}]"
        full = entry.get("fullUrl")
        if isinstance(full, str) and full:
            if not _ABSOLUTE.match(full):
                issues.append(Issue("error", "invalid", f"The fullUrl must be an absolute URL (not '{full}')",
                                    (f"{where}.fullUrl",)))
            elif res is not None and not full.startswith("urn:"):
                m = _RESTFUL.match(full)
                rid = res.get("id")
                if m and isinstance(rid, str) and m.group("type") == res.get("resourceType") and m.group("id") != rid:
                    issues.append(Issue("error", "invalid", f"Resource ID does not match the ID in the entry full "
                                        f"URL ('{rid}' vs '{full}')", (f"{where}.resource.id",)))
        if res is None or btype in ("searchset", "history", "batch-response", "transaction-response"):
            continue
        base = full if isinstance(full, str) else None
        for ref, ref_path in _references(res, f"{where}.resource"):
            if ref.startswith("urn:") and not _resolves(ref, base, urls, local):
                issues.append(Issue("warning", "not-found", f"URN reference is not locally contained within the "
                                    f"bundle {ref}", (ref_path,)))
    if btype in ("document", "message"):
        issues += _self_contained(bundle, path, btype, urls, local)
    return issues


def _self_contained(
    bundle: Mapping[str, Any], path: str, btype: str, urls: set[str], local: set[str]
) -> list[Issue]:
    issues: list[Issue] = []
    first = next(_entries(bundle), None)
    if first is None or first[2] is None:
        return issues
    i, entry, res = first
    assert res is not None
    want = "Composition" if btype == "document" else "MessageHeader"
    if res.get("resourceType") != want:
        return issues  # bdl-11 / bdl-12 report it
    base = entry.get("fullUrl") if isinstance(entry.get("fullUrl"), str) else None
    where = f"{path}.entry[{i}].resource"
    targets: list[tuple[Any, str, str]] = []
    for steps in _DOCUMENT_REFS if btype == "document" else _MESSAGE_REFS:
        targets += [(v, p, f"{want}.{'.'.join(steps)}") for v, p in _walk(res, steps, where)]
    if btype == "document":
        targets += [(v, p, "Section Entry") for v, p in _section_entries(res.get("section"), f"{where}.section")]
    for value, ref_path, label in targets:
        ref = value.get("reference") if isinstance(value, dict) else None
        if isinstance(ref, str) and ref and not ref.startswith("#") and not _resolves(ref, base, urls, local):
            issues.append(Issue("error", "invalid", f"Can't find '{ref}' in the bundle ({label})",
                                (f"{ref_path}.reference",)))
    return issues


def _walk(value: Mapping[str, Any], steps: tuple[str, ...], path: str) -> Iterator[tuple[Any, str]]:
    head, rest = steps[0], steps[1:]
    child = value.get(head)
    items = [(c, f"{path}.{head}[{n}]") for n, c in enumerate(child)] if isinstance(child, list) else (
        [(child, f"{path}.{head}")] if child is not None else [])
    for item, item_path in items:
        if not rest:
            yield item, item_path
        elif isinstance(item, dict):
            yield from _walk(item, rest, item_path)


def _section_entries(sections: Any, path: str) -> Iterator[tuple[Any, str]]:
    for n, section in enumerate(_list(sections)):
        if not isinstance(section, dict):
            continue
        here = f"{path}[{n}]"
        for m, entry in enumerate(_list(section.get("entry"))):
            yield entry, f"{here}.entry[{m}]"
        yield from _section_entries(section.get("section"), f"{here}.section")
