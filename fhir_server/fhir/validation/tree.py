"""A StructureDefinition snapshot compiled into a tree the validator can walk by JSON property name.

A snapshot is a flat, ordered element list; validation needs "given this JSON key under this element, which
definition applies?". Compiling once per StructureDefinition turns paths into nested :class:`ElementNode`s,
maps choice elements to every concrete JSON name (``value[x]`` → ``valueString``, ``valueQuantity``...), and
hangs slices (``Patient.extension:race``) off the element they slice, each with its own children.

Children that a snapshot does not list (``Consent.patient`` is a Reference; Reference's elements live in the
Reference StructureDefinition) are found by the validator through the element's type, not here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .primitives import PRIMITIVES

VALUE_PREFIXES = ("fixed", "pattern")


@dataclass(frozen=True, slots=True)
class TypeRef:
    code: str
    profiles: tuple[str, ...] = ()
    target_profiles: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Constraint:
    key: str
    severity: str
    human: str
    expression: str


@dataclass(frozen=True, slots=True)
class Discriminator:
    type: str  # value | pattern | type | profile | exists
    path: str


@dataclass(frozen=True, slots=True)
class Slicing:
    discriminators: tuple[Discriminator, ...]
    rules: str  # closed | open | openAtEnd
    ordered: bool


def upper_first(code: str) -> str:
    return code[:1].upper() + code[1:]


@dataclass(eq=False, slots=True)
class ElementNode:
    """One element definition (or one slice of it) with its children keyed by JSON property name."""

    id: str
    path: str
    name: str  # last path segment: "actor", "value[x]", "valueQuantity"
    min: int
    max: int | None  # None means "*"
    types: tuple[TypeRef, ...]
    slice_name: str | None = None
    content_reference: str | None = None
    fixed: tuple[str, Any] | None = None  # ("fixedUri", "http://...")
    pattern: tuple[str, Any] | None = None
    binding: tuple[str, str] | None = None  # (strength, valueSet url)
    constraints: tuple[Constraint, ...] = ()
    slicing: Slicing | None = None
    slices: list[ElementNode] = field(default_factory=list)
    children: dict[str, ElementNode] = field(default_factory=dict)  # by path segment, as in the snapshot
    # JSON name → (definition to validate against, its type when fixed by the name, child owning cardinality)
    json_names: dict[str, tuple[ElementNode, str | None, ElementNode]] = field(default_factory=dict)
    required: tuple[ElementNode, ...] = ()  # children with min > 0, checked when absent
    base_max: int | None = -1  # max of the base definition (decides array or not in JSON); -1 = as max
    max_length: int | None = None
    min_value: Any = None
    max_value: Any = None
    is_modifier: bool = False

    @property
    def is_choice(self) -> bool:
        return self.name.endswith("[x]")

    @property
    def repeats(self) -> bool:
        """Whether JSON carries this element as an array (decided by the base definition's max)."""
        top = self.max if self.base_max == -1 else self.base_max
        return top is None or top > 1

    @property
    def type_codes(self) -> frozenset[str]:
        return frozenset(t.code for t in self.types)

    def is_primitive(self, type_code: str) -> bool:
        return type_code in PRIMITIVES

    def finish(self) -> None:
        """Map JSON property names to children; later, more specific definitions win over ``[x]``."""
        names: dict[str, tuple[ElementNode, str | None, ElementNode]] = {}
        for seg, child in self.children.items():
            if child.is_choice:
                stem = seg[:-3]
                for t in child.types:
                    names.setdefault(stem + upper_first(t.code), (child, t.code, child))
                for sl in child.slices:  # type slices on a choice: value[x]:valueQuantity
                    if sl.slice_name and sl.slice_name.startswith(stem) and len(sl.types) == 1:
                        names[sl.slice_name] = (sl, sl.types[0].code, child)
        for seg, child in self.children.items():
            if not child.is_choice:
                # a renamed choice (Observation.valueQuantity) overrides the generic mapping
                names[seg] = (child, child.types[0].code if len(child.types) == 1 else None, child)
        self.json_names = names
        self.required = tuple(
            c for c in self.children.values() if c.min > 0 or any(s.min > 0 for s in c.slices)
        )
        for child in self.children.values():
            child.finish()
        for sl in self.slices:
            sl.finish()


def _node(el: Mapping[str, Any]) -> ElementNode:
    path = el["path"]
    max_ = el.get("max", "*")
    fixed = pattern = min_value = max_value = None
    for key, value in el.items():
        if key.startswith("fixed"):
            fixed = (key, value)
        elif key.startswith("pattern"):
            pattern = (key, value)
        elif key.startswith("minValue"):
            min_value = value
        elif key.startswith("maxValue"):
            max_value = value
    binding = el.get("binding") or {}
    slicing = el.get("slicing")
    base_max = (el.get("base") or {}).get("max")
    node = ElementNode(
        id=el.get("id", path),
        path=path,
        name=path.rsplit(".", 1)[-1],
        min=int(el.get("min", 0)),
        max=None if max_ == "*" else int(max_),
        types=tuple(
            TypeRef(t.get("code", ""), tuple(t.get("profile", ())), tuple(t.get("targetProfile", ())))
            for t in el.get("type", ())
        ),
        slice_name=el.get("sliceName"),
        content_reference=el.get("contentReference"),
        fixed=fixed,
        pattern=pattern,
        # a binding without a strength is reported when the profile is stored (StructureDefinition rules);
        # here it binds nothing rather than guess how strictly
        binding=(binding["strength"], binding["valueSet"])
        if isinstance(binding.get("valueSet"), str) and isinstance(binding.get("strength"), str)
        else None,
        constraints=tuple(
            Constraint(c.get("key", "?"), c.get("severity", "error"), c.get("human", ""), c["expression"])
            for c in el.get("constraint", ())
            if c.get("expression")
        ),
        slicing=Slicing(
            tuple(
                Discriminator(d.get("type", "value"), d.get("path", "$this"))
                for d in slicing.get("discriminator", ())
            ),
            slicing.get("rules", "open"),
            bool(slicing.get("ordered")),
        )
        if slicing
        else None,
        max_length=el.get("maxLength"),
        min_value=min_value,
        max_value=max_value,
        is_modifier=bool(el.get("isModifier")),
    )
    if base_max is not None:
        node.base_max = None if base_max == "*" else int(base_max)
    return node


class TreeError(ValueError):
    """The snapshot cannot be arranged into a tree (an element whose parent is missing)."""


@dataclass(eq=False, slots=True)
class ElementTree:
    """The compiled snapshot of one StructureDefinition."""

    url: str
    type: str
    kind: str
    root: ElementNode
    by_path: dict[str, ElementNode]  # unsliced elements, for contentReference (#Consent.provision)

    def resolve_reference(self, ref: str) -> ElementNode | None:
        key = ref.split("#", 1)[-1]
        return self.by_path.get(key)


def build_tree(sd: Mapping[str, Any], elements: Iterable[Mapping[str, Any]]) -> ElementTree:
    """Arrange snapshot elements into a tree; raises :class:`TreeError` when one has no parent."""
    root: ElementNode | None = None
    stack: list[ElementNode] = []
    by_path: dict[str, ElementNode] = {}
    for el in elements:
        node = _node(el)
        if root is None:
            if "." in node.path:
                raise TreeError(f"the first snapshot element {node.path!r} is not the root")
            root = node
            stack = [node]
            by_path[node.path] = node
            continue
        parent_path, _, seg = node.path.rpartition(".")
        while stack and stack[-1].path != parent_path:
            stack.pop()
        if not stack:
            raise TreeError(f"element {node.id!r} has no parent element {parent_path!r} in the snapshot")
        parent = stack[-1]
        if node.slice_name is not None and seg in parent.children:
            base = parent.children[seg]
            # re-slices ("a/b") hang off the slice they refine
            owner = base
            if "/" in node.slice_name:
                head = node.slice_name.rsplit("/", 1)[0]
                owner = next((s for s in base.slices if s.slice_name == head), base)
            owner.slices.append(node)
        else:
            parent.children[seg] = node
            if all(n.slice_name is None for n in stack):
                by_path[node.path] = node
        stack.append(node)
    if root is None:
        raise TreeError("the snapshot has no elements")
    root.finish()
    return ElementTree(sd.get("url", ""), sd.get("type", root.path), sd.get("kind", ""), root, by_path)
