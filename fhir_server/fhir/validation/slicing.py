"""Which slice does an array item belong to? (profiling.html#slicing)

Each slice is tested with every discriminator of the slicing: ``value``/``pattern`` compare the item's value
at the discriminator path with the fixed/pattern value (or required binding) the slice defines there; ``type``
compares types; ``exists`` checks presence; ``profile`` asks the validator whether the item conforms. An item
matching no slice is allowed by ``open`` slicing, an error under ``closed``, and under ``openAtEnd`` only
after all sliced items.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from .primitives import PRIMITIVES
from .tree import Discriminator, ElementNode, TypeRef
from .values import matches_fixed, matches_pattern, path_segments, select, select_typed

# resolves the definition a slice gives to a sub-path; supplied by the validator (it knows type trees)
ChildLookup = Callable[[ElementNode, str], ElementNode | None]
ProfileCheck = Callable[[Any, tuple[str, ...], str], bool]
TypeOf = Callable[[Any], str | None]
Resolve = Callable[[Any], dict[str, Any] | None]  # a Reference value → the resource it points to, if at hand


def _definition_at(slice_node: ElementNode, path: str, lookup: ChildLookup) -> ElementNode | None:
    node: ElementNode | None = slice_node
    for seg in path_segments(path):
        if node is None:
            return None
        node = lookup(node, seg)
    return node


def _value_matches(
    item: Any, disc: Discriminator, target: ElementNode, in_value_set: Callable[[Any], bool]
) -> bool | None:
    """True/False, or None when the slice defines nothing to compare at that path."""
    values = list(select(item, disc.path))
    if target.fixed is not None:
        return any(matches_fixed(v, target.fixed[1]) for v in values)
    if target.pattern is not None:
        return any(matches_pattern(v, target.pattern[1]) for v in values)
    if target.binding is not None and target.binding[0] == "required":
        return any(in_value_set(v) for v in values)
    return None


def _resolved(
    item: Any, disc: Discriminator, slice_node: ElementNode, lookup: ChildLookup, resolve: Resolve
) -> tuple[list[Any], ElementNode | None]:
    """``path.resolve()``: the resources the references at ``path`` point to, and the Reference element."""
    prefix = disc.path[: -len("resolve()")].rstrip(".") or "$this"
    target = _definition_at(slice_node, prefix, lookup)
    return [r for v in select(item, prefix) if (r := resolve(v)) is not None], target


def _targets(target: ElementNode, tree_type: Callable[[str], str | None]) -> set[str]:
    return {t for ref in target.types for url in ref.target_profiles if (t := tree_type(url))}


def slice_matches(
    item: Any,
    slice_node: ElementNode,
    discriminators: tuple[Discriminator, ...],
    *,
    lookup: ChildLookup,
    conforms: ProfileCheck,
    type_of: TypeOf,
    in_value_set: Callable[[ElementNode, Any], bool],
    resolve: Resolve = lambda _: None,
    tree_type: Callable[[str], str | None] = lambda url: url.rsplit("/", 1)[-1],
) -> bool:
    """Does ``item`` satisfy every discriminator of ``slice_node``? Unusable discriminators never match."""
    for disc in discriminators:
        try:
            if disc.path == "resolve()" or disc.path.endswith(".resolve()"):
                # a reference sliced by what it points to: the resource's type, or its profile
                found, ref_node = _resolved(item, disc, slice_node, lookup, resolve)
                if ref_node is None or not found:
                    return False
                if disc.type == "type":
                    allowed = _targets(ref_node, tree_type)
                    if not allowed or not all(r.get("resourceType") in allowed for r in found):
                        return False
                elif disc.type == "profile":
                    urls = tuple(u for t in ref_node.types for u in t.target_profiles)
                    if not urls or not all(conforms(r, urls, str(r.get("resourceType", ""))) for r in found):
                        return False
                else:
                    return False
                continue
            target = _definition_at(slice_node, disc.path, lookup)
            if disc.type in ("value", "pattern"):
                if target is None:
                    return False
                ok = _value_matches(item, disc, target, functools.partial(in_value_set, target))
                if not ok:
                    return False
            elif disc.type == "exists":
                # profiling.html#discriminator: the slice requires the element (min ≥ 1) or forbids it (max 0)
                present = any(True for _ in select(item, disc.path))
                if target is None:
                    return False
                if target.min > 0:
                    if not present:
                        return False
                elif target.max == 0:
                    if present:
                        return False
                else:
                    return False
            elif disc.type == "type":
                if target is None:
                    return False
                found = (
                    [t or type_of(v) for v, t in select_typed(item, disc.path)]
                    if disc.path != "$this"
                    else [type_of(item)]
                )
                if not found or not all(f in target.type_codes for f in found if f is not None):
                    return False
            elif disc.type == "profile":
                if target is None:
                    return False
                profiles = tuple(p for t in target.types for p in (t.profiles or t.target_profiles))
                values = list(select(item, disc.path))
                if (
                    not profiles
                    or not values
                    or not all(conforms(v, profiles, _code(target.types)) for v in values)
                ):
                    return False
            else:
                return False
        except ValueError:
            return False
    return True


def _code(types: tuple[TypeRef, ...]) -> str:
    return types[0].code if types else ""


def primitive_type_of(value: Any) -> str | None:
    """Best guess of a JSON value's FHIR type for ``type`` discriminators on ``$this`` of a primitive."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, dict):
        rt = value.get("resourceType")
        return rt if isinstance(rt, str) else None
    return None if not isinstance(value, str) else ("string" if "string" in PRIMITIVES else None)
