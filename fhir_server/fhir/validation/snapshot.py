"""Snapshot generation for constraining profiles that arrive with only a differential.

A reasonable subset of profiling.html#snapshot: start from the base's snapshot (generated first, recursively,
when the base lacks one too), then apply each differential element in order, matched by element id (or by
path + sliceName):

* an existing element is constrained in place (cardinality, types, fixed/pattern, binding, slicing...;
  constraints are added to the inherited ones);
* a new slice copies the sliced element and its children under ``id:sliceName`` and goes after the earlier
  slices;
* a path inside a datatype (``Consent.category.coding``) unfolds the datatype's (or the element's type
  profile's) children first;
* a renamed choice (``Observation.valueQuantity``) constrains ``value[x]`` to that type.

An unknown base, a path the base does not have, a ``baseDefinition`` loop, or a differential that widens the
cardinality it inherits (``min`` below the base's, ``max`` above it; a new slice only may not exceed the sliced
element's ``max``) raise :class:`SnapshotError`, which the caller turns into an issue.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from .terminology import strip_version

MAX_DEPTH = 20
_MERGED_LISTS = ("constraint", "condition")


class SnapshotError(ValueError):
    """The differential cannot be applied to its base; ``str()`` says why."""


class _Source(Protocol):
    def structure_definition(self, url: str) -> Mapping[str, Any] | None: ...


def generate_snapshot(sd: Mapping[str, Any], source: _Source, seen: Sequence[str]) -> list[dict[str, Any]]:
    """Snapshot elements for ``sd`` from its base's snapshot and its own differential."""
    url = strip_version(str(sd.get("url", "")))
    if url in seen:
        raise SnapshotError(f"baseDefinition loop: {' → '.join([*seen, url])}")
    if len(seen) > MAX_DEPTH:
        raise SnapshotError("baseDefinition chain is too deep")
    chain = (*seen, url)
    base_url = sd.get("baseDefinition")
    if not isinstance(base_url, str):
        raise SnapshotError("it has neither a snapshot nor a baseDefinition")
    base = source.structure_definition(base_url)
    if base is None:
        raise SnapshotError(f"its baseDefinition {base_url} is not known")
    if strip_version(base_url) in chain:
        raise SnapshotError(f"baseDefinition loop: {' → '.join([*chain, strip_version(base_url)])}")
    base_elements = _snapshot_of(base, source, chain)
    out = [_inherit(el) for el in base_elements]
    pristine = [_inherit(el) for el in base_elements]  # what a contentReference reuses: the base, unconstrained
    differential = (sd.get("differential") or {}).get("element") or []
    if not isinstance(differential, list):
        raise SnapshotError("differential.element must be a list")
    for diff in differential:
        _apply(out, diff, source, chain, pristine)
    return out


def _snapshot_of(sd: Mapping[str, Any], source: _Source, chain: Sequence[str]) -> list[Mapping[str, Any]]:
    elements = (sd.get("snapshot") or {}).get("element")
    if elements:
        return list(elements)
    return list(generate_snapshot(sd, source, chain))


def _inherit(el: Mapping[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(dict(el))
    out.setdefault("id", out["path"])
    base = out.setdefault("base", {"path": out["path"], "min": out.get("min", 0), "max": out.get("max", "*")})
    base.setdefault("max", out.get("max", "*"))
    return out


def _diff_id(diff: Mapping[str, Any]) -> str:
    if isinstance(diff.get("id"), str):
        return diff["id"]
    path = diff.get("path")
    if not isinstance(path, str):
        raise SnapshotError("a differential element has no path")
    return f"{path}:{diff['sliceName']}" if diff.get("sliceName") else path


def _index(out: list[dict[str, Any]], element_id: str) -> int | None:
    for i, el in enumerate(out):
        if el["id"] == element_id:
            return i
    return None


def _subtree_end(out: list[dict[str, Any]], i: int, *, with_slices: bool) -> int:
    head = out[i]["id"]
    j = i + 1
    while j < len(out):
        other = out[j]["id"]
        if other.startswith(head + ".") or (with_slices and other.startswith(head + ":")):
            j += 1
        else:
            break
    return j


def _parent_id(element_id: str) -> tuple[str, str]:
    """``Consent.category:a.coding`` → (``Consent.category:a``, ``coding``)."""
    depth, cut = 0, -1
    for pos, ch in enumerate(element_id):
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "." and depth == 0:
            cut = pos
    if cut < 0:
        return "", element_id
    return element_id[:cut], element_id[cut + 1 :]


def _apply(
    out: list[dict[str, Any]],
    diff: Mapping[str, Any],
    source: _Source,
    chain: Sequence[str],
    base: list[dict[str, Any]],
) -> None:
    element_id = _normalise_choice(out, _normalise_parents(out, _diff_id(diff)), diff)
    i = _index(out, element_id)
    new_slice = False
    if i is None:
        i = _create(out, element_id, diff, source, chain, base)
        new_slice = ":" in _parent_id(element_id)[1]
    _check_cardinality(out[i], diff, element_id, new_slice=new_slice)
    _merge(out[i], diff)


def _max(value: Any) -> float | None:
    """``"*"`` → infinity, ``"3"`` → 3; None for anything malformed (the tree builder reports it)."""
    if value == "*":
        return float("inf")
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


def _check_cardinality(
    base: Mapping[str, Any], diff: Mapping[str, Any], element_id: str, *, new_slice: bool
) -> None:
    """A profile constrains its base (profiling.html#cardinality): it may narrow min..max, never widen it."""
    base_min, base_max = base.get("min", 0), base.get("max", "*")
    new_min, new_max = diff.get("min", base_min), diff.get("max", base_max)
    widened = []
    if (
        not new_slice  # a slice's min is its own (the sliced element's min counts all its slices)
        and isinstance(new_min, int)
        and isinstance(base_min, int)
        and new_min < base_min
    ):
        widened.append(f"min {new_min} is below the base min {base_min}")
    top, limit = _max(new_max), _max(base_max)
    if top is not None and limit is not None and top > limit:
        what = "the sliced element's" if new_slice else "the base"
        widened.append(f"max {new_max} is above {what} max {base_max}")
    if widened:
        raise SnapshotError(
            f"element {element_id} widens the cardinality it inherits ({base_min}..{base_max}): "
            + " and ".join(widened)
        )


def _normalise_parents(out: list[dict[str, Any]], element_id: str) -> str:
    """``Observation.valueQuantity.code`` → ``Observation.value[x].code``, with ``value[x]`` restricted to
    Quantity as a differential naming ``Observation.valueQuantity`` itself would."""
    parent, seg = _parent_id(element_id)
    if not parent or _index(out, element_id) is not None:
        return element_id
    fixed = _normalise_parents(out, parent)
    if _index(out, fixed) is None:
        restrict: dict[str, Any] = {}
        renamed = _normalise_choice(out, fixed, restrict)
        if renamed != fixed and restrict.get("type"):
            i = _index(out, renamed)
            if i is not None:
                out[i]["type"] = [t for t in out[i].get("type", ()) if t.get("code") == restrict["type"][0]["code"]]
            fixed = renamed
    return f"{fixed}.{seg}"


def _normalise_choice(out: list[dict[str, Any]], element_id: str, diff: Mapping[str, Any]) -> str:
    """``Observation.valueQuantity`` → ``Observation.value[x]``, restricted to Quantity by the diff's type."""
    if _index(out, element_id) is not None:
        return element_id
    parent, seg = _parent_id(element_id)
    name = seg.split(":", 1)[0]
    for el in out:
        if el["id"].startswith(parent + ".") and el["id"].endswith("[x]"):
            p2, s2 = _parent_id(el["id"])
            stem = s2[:-3]
            if p2 == parent and name.startswith(stem) and name[len(stem) :][:1].isupper():
                if not diff.get("type") and isinstance(diff, dict):
                    diff["type"] = [{"code": name[len(stem) :][:1].lower() + name[len(stem) + 1 :]}]
                    if not any(t.get("code") == diff["type"][0]["code"] for t in el.get("type", ())):
                        diff["type"][0]["code"] = name[len(stem) :]
                return el["id"] + seg[len(name) :]
    return element_id


def _create(
    out: list[dict[str, Any]],
    element_id: str,
    diff: Mapping[str, Any],
    source: _Source,
    chain: Sequence[str],
    base: list[dict[str, Any]],
) -> int:
    parent_id, seg = _parent_id(element_id)
    if ":" in seg:  # a new slice of parent.name
        name, slice_name = seg.split(":", 1)
        sliced_id = f"{parent_id}.{name}" if parent_id else name
        j = _index(out, sliced_id)
        if j is None:
            j = _create(out, sliced_id, {}, source, chain, base)
        sliced = out[j]
        type_slice = _choice_type(sliced, slice_name)
        if "slicing" not in sliced:
            if name in ("extension", "modifierExtension"):
                sliced["slicing"] = {"discriminator": [{"type": "value", "path": "url"}], "rules": "open"}
            elif type_slice is not None:  # value[x]:valueString is a type slice whether declared or not
                sliced["slicing"] = {"discriminator": [{"type": "type", "path": "$this"}], "ordered": False,
                                     "rules": "open"}
            elif "/" not in slice_name:
                raise SnapshotError(f"slice {slice_name!r} is defined on {sliced_id}, which is not sliced")
        end = _subtree_end(out, j, with_slices=True)
        subtree = out[j : _subtree_end(out, j, with_slices=False)]
        copies = []
        for el in subtree:
            new = copy.deepcopy(el)
            new["id"] = element_id + el["id"][len(sliced_id) :]
            copies.append(new)
        copies[0]["sliceName"] = slice_name
        copies[0].pop("slicing", None)
        if type_slice is not None and not diff.get("type"):
            copies[0]["type"] = [type_slice]
        out[end:end] = copies
        return end
    if not parent_id:
        raise SnapshotError(f"element {element_id} is not in the base")
    p = _index(out, parent_id)
    if p is None:
        p = _create(out, parent_id, {}, source, chain, base)
    if _subtree_end(out, p, with_slices=False) == p + 1:
        _unfold(out, p, source, chain, base)
    i = _index(out, element_id)
    if i is None:
        raise SnapshotError(
            f"element {element_id} (path {diff.get('path', element_id)}) is not in the base definition"
        )
    return i


def _choice_type(sliced: Mapping[str, Any], slice_name: str) -> dict[str, Any] | None:
    """The type a slice named like ``valueString`` selects on a choice element ``value[x]``, else None."""
    stem = str(sliced.get("path", "")).rsplit(".", 1)[-1]
    if not stem.endswith("[x]") or not slice_name.startswith(stem[:-3]):
        return None
    suffix = slice_name[len(stem) - 3 :]
    for t in sliced.get("type") or ():
        code = t.get("code", "") if isinstance(t, dict) else ""
        if code[:1].upper() + code[1:] == suffix:
            return copy.deepcopy(dict(t))
    return None


def _unfold_reference(out: list[dict[str, Any]], p: int, base: list[dict[str, Any]]) -> None:
    """Insert the children of an element defined by ``contentReference`` (``Parameters.parameter.part``
    is another ``Parameters.parameter``), so a profile can constrain them where they are reached."""
    parent = out[p]
    target_id = str(parent["contentReference"]).split("#", 1)[-1]
    t = _index(base, target_id)
    if t is None:
        raise SnapshotError(f"the contentReference {parent['contentReference']} of {parent['id']} is not found")
    children = []
    for el in base[t + 1 : _subtree_end(base, t, with_slices=False)]:
        if ":" in el["id"][len(target_id) :]:
            continue  # the referenced element's slices belong to it, not to every place it is reused
        new = copy.deepcopy(el)
        new["path"] = parent["path"] + el["path"][len(base[t]["path"]) :]
        new["id"] = parent["id"] + el["id"][len(target_id) :]
        children.append(new)
    del parent["contentReference"]
    parent["type"] = [{"code": "Element" if target_id.count(".") == 0 else "BackboneElement"}]
    out[p + 1 : p + 1] = children


def _unfold(
    out: list[dict[str, Any]], p: int, source: _Source, chain: Sequence[str], base: list[dict[str, Any]]
) -> None:
    """Insert the children of ``out[p]`` from its (single) type or type profile."""
    parent = out[p]
    if parent.get("contentReference") and not parent.get("type"):
        _unfold_reference(out, p, base)
        return
    types = parent.get("type") or []
    if len(types) != 1:
        raise SnapshotError(f"cannot constrain inside {parent['id']}: it has {len(types)} types")
    t = types[0]
    url = (t.get("profile") or [None])[0] or (
        t["code"] if ":" in t["code"] else "http://hl7.org/fhir/StructureDefinition/" + t["code"]
    )
    sd = source.structure_definition(url)
    if sd is None:
        raise SnapshotError(f"the type {url} of {parent['id']} is not known")
    elements = _snapshot_of(sd, source, chain)
    if not elements:
        return
    root_path = elements[0]["path"]
    children = []
    for el in elements[1:]:
        new = _inherit(el)
        new["path"] = parent["path"] + new["path"][len(root_path) :]
        new["id"] = parent["id"] + new["id"][len(elements[0].get("id", root_path)) :]
        children.append(new)
    out[p + 1 : p + 1] = children


def _merge(target: dict[str, Any], diff: Mapping[str, Any]) -> None:
    for key, value in diff.items():
        if key in ("id", "path"):
            continue
        if key in _MERGED_LISTS and isinstance(value, list):
            existing = target.setdefault(key, [])
            known = {c.get("key") if isinstance(c, dict) else c for c in existing}
            existing.extend(c for c in value if (c.get("key") if isinstance(c, dict) else c) not in known)
        elif key.startswith(("fixed", "pattern")):
            for old in [k for k in target if k.startswith(("fixed", "pattern"))]:
                del target[old]
            target[key] = copy.deepcopy(value)
        else:
            target[key] = copy.deepcopy(value)
