"""A small checker of our profiles' snapshots against instances: cardinality, fixed/pattern values, slices and
required bindings to local ValueSets. Enough to prove the mapping writes what the profiles say; not a general
FHIR validator."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def load(name: str) -> dict[str, Any]:
    return json.loads((ROOT / "profiles" / f"{name}.json").read_text(encoding="utf-8"))


def valueset_codes(url: str) -> set[tuple[str, str]]:
    vs = load("ValueSet-" + url.rsplit("/", 1)[1])
    codes: set[tuple[str, str]] = set()
    for include in vs["compose"]["include"]:
        if "concept" in include:
            codes |= {(include["system"], c["code"]) for c in include["concept"]}
        else:
            cs = load("CodeSystem-" + include["system"].rsplit("/", 1)[1])
            codes |= {(include["system"], c["code"]) for c in cs["concept"]}
    return codes


def _children(node: Any, name: str) -> list[Any]:
    if not isinstance(node, dict):
        return []
    if name.endswith("[x]"):
        keys = [k for k in node if k.startswith(name[:-3]) and k[len(name) - 3 :][:1].isupper()]
    else:
        keys = [name] if name in node else []
    out: list[Any] = []
    for key in keys:
        value = node[key]
        out += value if isinstance(value, list) else [value]
    return out


def contains(value: Any, pattern: Any) -> bool:
    if isinstance(pattern, dict):
        return isinstance(value, dict) and all(contains(value.get(k), v) for k, v in pattern.items())
    if isinstance(pattern, list):
        return isinstance(value, list) and all(any(contains(v, p) for v in value) for p in pattern)
    return value == pattern


def _max(element: dict[str, Any]) -> float:
    return float("inf") if element["max"] == "*" else int(element["max"])


def check(resource: dict[str, Any], profile: str) -> list[str]:
    """Problems of ``resource`` against ``profiles/StructureDefinition-<profile>.json`` (empty = conforms)."""
    sd = load(f"StructureDefinition-{profile}")
    elements = sd["snapshot"]["element"]
    problems: list[str] = []
    nodes: dict[str, list[Any]] = {elements[0]["id"]: [resource]}
    for element in elements[1:]:
        eid = element["id"]
        parent_id, _, name = eid.rpartition(".")
        if ":" in name:  # a slice: count the sliced element's values that match the slice
            problems += _check_slice(element, nodes.get(parent_id, []), name.split(":")[0])
            continue
        parents = nodes.get(parent_id, [])
        values_by_parent = [_children(p, name) for p in parents]
        nodes[eid] = [v for vs in values_by_parent for v in vs]
        for values in values_by_parent:
            if not element.get("min", 0) <= len(values) <= _max(element):
                problems.append(f"{eid}: {len(values)} value(s), expected {element['min']}..{element['max']}")
        for values in values_by_parent:
            for value in values:
                problems += _check_value(element, value)
    return problems


def _check_value(element: dict[str, Any], value: Any) -> list[str]:
    eid = element["id"]
    out = []
    for key, expected in element.items():
        if key.startswith("fixed") and value != expected:
            out.append(f"{eid}: {value!r} is not the fixed {expected!r}")
        if key.startswith("pattern") and not contains(value, expected):
            out.append(f"{eid}: {value!r} does not match the pattern {expected!r}")
    binding = element.get("binding", {})
    if binding.get("strength") == "required" and binding.get("valueSet", "").startswith("https://ascmi."):
        allowed = valueset_codes(binding["valueSet"])
        codings = value.get("coding", []) if isinstance(value, dict) and "coding" in value else [value]
        if isinstance(value, dict) and not any((c.get("system"), c.get("code")) in allowed for c in codings):
            out.append(f"{eid}: {value!r} has no code of {binding['valueSet']}")
    return out


def _check_slice(element: dict[str, Any], parents: list[Any], name: str) -> list[str]:
    out = []
    for parent in parents:
        values = _children(parent, name)
        if name == "extension":
            urls = [t for ty in element.get("type", []) for t in ty.get("profile", [])]
            matching = [v for v in values if v.get("url") in urls]
        else:
            pattern = next((v for k, v in element.items() if k.startswith("pattern")), None)
            matching = [v for v in values if pattern is not None and contains(v, pattern)]
        if not element.get("min", 0) <= len(matching) <= _max(element):
            out.append(f"{element['id']}: {len(matching)} slice value(s), expected {element['min']}..{element['max']}")
        for value in matching:
            out += _check_value(element, value)
    return out


def check_extension(extension: dict[str, Any]) -> list[str]:
    """An instance of one of our extensions against its StructureDefinition."""
    sd = load("StructureDefinition-" + extension["url"].rsplit("/", 1)[1])
    value_element = next(e for e in sd["snapshot"]["element"] if e["id"] == "Extension.value[x]")
    kind = value_element["type"][0]["code"]
    key = "value" + kind[0].upper() + kind[1:]
    values = [k for k in extension if k.startswith("value")]
    if values != [key]:
        return [f"{extension['url']}: expected {key}, got {values}"]
    binding = value_element.get("binding")
    if binding:
        allowed = {code for _, code in valueset_codes(binding["valueSet"])}
        if extension[key] not in allowed:
            return [f"{extension['url']}: {extension[key]!r} is not in {binding['valueSet']}"]
    return []
