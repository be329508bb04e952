"""Regenerate ``examples/forms/NAME.bundle.json`` from ``examples/forms/NAME.json`` (fixed clock, fixed
uuids).

    .venv/bin/python examples/generate_ascmi_bundles.py          # rewrite the bundles
    .venv/bin/python examples/generate_ascmi_bundles.py --check  # exit 1 if a bundle is stale

Revocation examples revoke example forms as if those forms' bundles had been stored: each urn:uuid becomes a
readable id (the Consent's id is the example's name, version 1). tests/ascmi checks the files are up to date.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from fhir_server.ascmi.bundle import sequential_ids
from fhir_server.ascmi.mapping import form_to_bundle
from fhir_server.ascmi.revocation import revocation_to_bundle, select_by_form_id
from fhir_server.ascmi.stored import Stored
from fhir_server.ascmi.terminology import load_terminology

FORMS = Path(__file__).resolve().parent / "forms"
NOW = datetime(2025, 6, 2, 10, 30, tzinfo=ZoneInfo("America/Los_Angeles"))


def load(name: str) -> dict[str, Any]:
    return json.loads((FORMS / f"{name}.json").read_text(encoding="utf-8"))


def names() -> list[str]:
    return sorted(p.name[:-5] for p in FORMS.glob("*.json") if not p.name.endswith(".bundle.json"))


def as_stored(name: str, bundle: dict[str, Any]) -> dict[str, Stored]:
    """The bundle's new resources as a server would store them (urn:uuid references replaced by ids), by type.

    The Consent's id is the example's name; other ids are ``NAME-<entry index>``. Only the first resource of
    each type is returned (the form's Patient, collector Organization and Consent come first).
    """
    ids: dict[str, str] = {}
    for n, entry in enumerate(bundle["entry"]):
        kind = entry["resource"]["resourceType"]
        if entry["fullUrl"].startswith("urn:uuid:"):
            ids[entry["fullUrl"]] = f"{kind}/{name if kind == 'Consent' else f'{name}-{n}'}"
    text = json.dumps(bundle)
    for urn, ref in ids.items():
        text = text.replace(urn, ref)
    out: dict[str, Stored] = {}
    for entry, original in zip(json.loads(text)["entry"], bundle["entry"], strict=True):
        ref = ids.get(original["fullUrl"])
        if ref and ref.split("/")[0] not in out:
            kind, rid = ref.split("/")
            resource = {
                **entry["resource"],
                "id": rid,
                "meta": {**entry["resource"].get("meta", {}), "versionId": "1"},
            }
            out[kind] = Stored(resource, rid, "1")
    return out


def build(name: str) -> dict[str, Any]:
    doc = load(name)
    if "revokes" not in doc:
        return form_to_bundle(doc, now=NOW, new_id=sequential_ids(name))
    stored = {form: as_stored(form, build(form)) for form in names() if "revokes" not in load(form)}
    target = doc["revokes"]
    if "formId" in target:
        candidates = [(s["Consent"], s["Patient"].resource) for s in stored.values()]
        consent, _ = select_by_form_id(target["formId"], candidates, doc, terminology=load_terminology())
    else:
        consent = stored[target["consent"].split("/", 1)[1]]["Consent"]
    patient = stored[consent.id]["Patient"]
    return revocation_to_bundle(doc, revoked=consent, patient=patient, now=NOW, new_id=sequential_ids(name))


def render(bundle: dict[str, Any]) -> str:
    return json.dumps(bundle, indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str]) -> int:
    stale = []
    for name in names():
        path = FORMS / f"{name}.bundle.json"
        text = render(build(name))
        if "--check" in argv:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                stale.append(path.name)
        else:
            path.write_text(text, encoding="utf-8")
    for name in stale:
        print(f"stale: {name}", file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
