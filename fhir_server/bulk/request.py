"""The Bulk Data 2.0 kick-off request, parsed and checked before a job exists (pure: no I/O).

Parameters (GET query or POST ``Parameters``): ``_outputFormat``, ``_since``, ``_type``, ``_typeFilter``,
``_elements``, and ``patient`` (POST, Patient and Group level). As the IG asks, a parameter the server does not
support (``includeAssociatedData``, ``_until``…) or cannot honour is an error unless the client sent
``Prefer: handling=lenient`` — then it is ignored and the manifest says so in an OperationOutcome file.

Scopes (ACCESS.md §B): a type is exported only when the caller holds ``r`` on it, and a ``_typeFilter`` needs
``s`` too (it is a search). Named explicitly in ``_type`` without the scope → 403 (lenient: skipped and noted);
without ``_type`` the export silently holds only the types the caller may read.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from fhir_server.consent.compartment import compartment_types
from fhir_server.fhir import instant, registry
from fhir_server.fhir.outcome import BadRequest, FHIRError, Issue
from fhir_server.fhir.search.api import parse_search
from fhir_server.security.caller import Caller

OUTPUT_FORMATS = ("application/fhir+ndjson", "application/ndjson", "ndjson")
SUPPORTED = {"_outputFormat", "_since", "_type", "_typeFilter", "_elements", "patient"}
_NOT_IN_FILTERS = {"_include", "_revinclude", "_sort", "_count", "_summary", "_elements", "_total", "_cursor",
                   "_contained", "_containedType"}
_FILTER_SPLIT = re.compile(r",(?=[A-Z][A-Za-z]*\?)")  # commas between filters, not inside one


class Forbidden(FHIRError):
    def __init__(self, diagnostics: str) -> None:
        FHIRError.__init__(self, 403, "forbidden", diagnostics)


@dataclass(slots=True)
class ExportRequest:
    """What a job exports. ``level``: ``system`` | ``patient`` | ``group``; ``types``: in export order;
    ``type_filters``: per type, the filters' query pairs (ORed); ``patients``: ids (``patient`` parameter)."""

    level: str
    types: list[str]
    group: str | None = None
    since: str | None = None
    type_filters: dict[str, list[list[tuple[str, str]]]] = field(default_factory=dict)
    patients: list[str] | None = None
    elements: list[str] = field(default_factory=list)
    all_types: bool = True  # no _type given: the caller's readable types
    notes: list[Issue] = field(default_factory=list)  # ignored parameters, skipped types (lenient)

    def to_json(self) -> dict[str, Any]:
        return {"level": self.level, "types": self.types, "group": self.group, "since": self.since,
                "type_filters": {t: [[list(p) for p in f] for f in fs] for t, fs in self.type_filters.items()},
                "patients": self.patients, "elements": self.elements, "all_types": self.all_types,
                "notes": [i.to_json() for i in self.notes]}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> ExportRequest:
        filters = {t: [[(p[0], p[1]) for p in f] for f in fs] for t, fs in d.get("type_filters", {}).items()}
        notes = [Issue(i["severity"], i["code"], i["diagnostics"], tuple(i.get("expression", ())))
                 for i in d.get("notes", [])]
        return cls(d["level"], list(d["types"]), d.get("group"), d.get("since"), filters, d.get("patients"),
                   list(d.get("elements") or []), bool(d.get("all_types", True)), notes)

    def elements_for(self, resource_type: str) -> list[str] | None:
        """``_elements`` that apply to one type (``Patient.name`` or plain ``name``), None when none was asked."""
        if not self.elements:
            return None
        chosen = [e.split(".", 1)[1] if "." in e else e for e in self.elements
                  if "." not in e or e.split(".", 1)[0] == resource_type]
        return chosen or None


def _values(pairs: list[tuple[str, str]], name: str) -> list[str]:
    """Repeated parameters and comma-separated values are the same thing (IG: "repeated parameters")."""
    return [v.strip() for k, v in pairs if k == name for v in v.split(",") if v.strip()]


def pairs_from_parameters(body: Any) -> list[tuple[str, str]]:
    """A POST kick-off ``Parameters`` → (name, value) pairs; ``patient`` references become their id."""
    if not isinstance(body, dict) or body.get("resourceType") != "Parameters":
        raise BadRequest("a POST kick-off takes a Parameters resource (or no body)", ["Parameters"])
    pairs: list[tuple[str, str]] = []
    for i, p in enumerate(body.get("parameter") or []):
        name = p.get("name") if isinstance(p, dict) else None
        if not isinstance(name, str):
            raise BadRequest("every parameter needs a name", [f"Parameters.parameter[{i}].name"])
        value = next((v for k, v in p.items() if k.startswith("value")), None)
        if isinstance(value, dict) and "reference" in value:
            value = value["reference"]
        if not isinstance(value, str):
            raise BadRequest(f"parameter {name!r} needs a string-valued value[x]", [f"Parameters.parameter[{i}]"])
        pairs.append((name, value))
    return pairs


def parse(level: str, pairs: list[tuple[str, str]], caller: Caller, *, lenient: bool, post: bool,
          group: str | None = None) -> ExportRequest:
    """Check a kick-off; raises 400 (bad or unsupported parameter), 403 (types outside the caller's scopes)."""
    notes: list[Issue] = []

    def refuse(message: str, expression: str, code: str = "not-supported") -> None:
        if not lenient:
            raise BadRequest(message, [expression], code=code)
        notes.append(Issue("warning", code, message + " (ignored: Prefer: handling=lenient)", (expression,)))

    for name in dict.fromkeys(k for k, _ in pairs):
        if name not in SUPPORTED and name not in ("_format", "_pretty"):
            refuse(f"kick-off parameter {name!r} is not supported by this server", name)
    formats = _values(pairs, "_outputFormat")
    for fmt in formats:
        if fmt.replace(" ", "+") not in OUTPUT_FORMATS:
            raise BadRequest(f"_outputFormat {fmt!r} is not supported; use application/fhir+ndjson",
                             ["_outputFormat"], code="not-supported")
    since = None
    for value in _values(pairs, "_since")[:1]:
        since = instant.to_instant(value.replace(" ", "+"))
        if since is None:
            raise BadRequest(f"_since {value!r} is not a FHIR instant (e.g. 2026-01-01T00:00:00Z)", ["_since"])
    patients = _patients(pairs, level, post, refuse)
    scope = compartment_types() if level != "system" else None
    types, all_types = _types(pairs, caller, scope, refuse, notes, lenient)
    filters = _filters(pairs, types, caller, refuse)
    elements = [e for e in _values(pairs, "_elements")]
    for e in elements:
        head = e.split(".", 1)[0]
        if "." in e and not registry.is_resource_type(head):
            raise BadRequest(f"_elements {e!r}: {head!r} is not a resource type", ["_elements"])
    return ExportRequest(level, types, group, since, filters, patients, elements, all_types, notes)


def _patients(pairs: list[tuple[str, str]], level: str, post: bool, refuse: Any) -> list[str] | None:
    refs = [v for k, v in pairs if k == "patient"]
    if not refs:
        return None
    if level == "system":
        refuse("the patient parameter applies to Patient and Group level exports only", "patient")
        return None
    if not post:
        refuse("the patient parameter is accepted in a POST kick-off (Parameters) only", "patient")
        return None
    ids = []
    for ref in refs:
        rtype, _, pid = ref.rpartition("/")
        if rtype.rsplit("/", 1)[-1] != "Patient" or not registry.is_valid_id(pid):
            raise BadRequest(f"patient {ref!r} is not a reference to a Patient (Patient/<id>)", ["patient"])
        ids.append(pid)
    return list(dict.fromkeys(ids))


def _types(pairs: list[tuple[str, str]], caller: Caller, scope: tuple[str, ...] | None, refuse: Any,
           notes: list[Issue], lenient: bool) -> tuple[list[str], bool]:
    asked = list(dict.fromkeys(_values(pairs, "_type")))
    if not asked:
        candidates = list(scope) if scope is not None else sorted(registry_types())
        return [t for t in candidates if caller.allows(t, "r")], True
    types: list[str] = []
    for t in asked:
        if not registry.is_resource_type(t):
            refuse(f"_type {t!r} is not a FHIR R4 resource type", "_type")
        elif scope is not None and t not in scope:
            refuse(f"_type {t!r} is never in a Patient compartment; a Patient or Group export cannot hold it",
                   "_type")
        elif not caller.allows(t, "r"):
            if not lenient:
                raise Forbidden(f"this client's scopes do not allow reading {t} (system/{t}.r)")
            notes.append(Issue("warning", "forbidden", f"{t} skipped: this client's scopes do not allow reading it",
                               ("_type",)))
        else:
            types.append(t)
    if not types:
        raise BadRequest("none of the requested _type values can be exported", ["_type"], code="not-supported")
    return types, False


def registry_types() -> list[str]:
    from fhir_server.fhir.search import definitions

    return sorted(definitions.resource_types())


def _filters(pairs: list[tuple[str, str]], types: list[str], caller: Caller, refuse: Any
             ) -> dict[str, list[list[tuple[str, str]]]]:
    out: dict[str, list[list[tuple[str, str]]]] = {}
    for raw in (v for k, v in pairs if k == "_typeFilter"):
        for text in _FILTER_SPLIT.split(raw):
            rtype, sep, query = text.strip().partition("?")
            if not sep or not registry.is_resource_type(rtype):
                raise BadRequest(f"_typeFilter {text!r} must look like Type?search (e.g. Observation?status=final)",
                                 ["_typeFilter"])
            if rtype not in types:
                refuse(f"_typeFilter {text!r} names {rtype}, which this export does not hold (see _type and "
                       "the client's scopes)", "_typeFilter")
                continue
            if not caller.allows(rtype, "s"):
                raise Forbidden(f"_typeFilter on {rtype} is a search; this client's scopes do not allow it")
            q = [(k, v) for k, v in parse_qsl(query, keep_blank_values=True)]
            bad = [k for k, _ in q if k.split(":")[0] in _NOT_IN_FILTERS]
            if bad:
                raise BadRequest(f"_typeFilter {text!r}: {bad[0]} has no meaning in a filter", ["_typeFilter"])
            parse_search(rtype, q, strict=True)  # 400 for an unknown parameter or a bad value
            out.setdefault(rtype, []).append(q)
    return out
