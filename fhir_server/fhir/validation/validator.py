"""The profile validator behind ``$validate``: a resource (parsed JSON) + profiles → issues.

The walk follows the JSON, not the definitions: every property of an object is looked up by its JSON name in
the compiled element tree (unknown names are errors), then each defined child is checked for cardinality,
JSON shape (array or not), type, primitive format, fixed/pattern values, bindings, references, slices and
invariants. Where a snapshot stops (a datatype such as Reference), the datatype's own tree takes over; where
an element names a profile (an extension slice, a constrained datatype), that profile's tree does.

>>> issues = Validator(DefinitionSource()).validate({"resourceType": "Patient", "gender": "f"})
>>> [(i.code, i.expression) for i in issues if i.severity == "error"]
[('code-invalid', ('Patient.gender',))]
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from typing import Any

from ..outcome import Issue
from .bindings import check_binding, check_known_codes
from .definitions import DefinitionSource
from .invariants import InvariantError, compile_invariant
from .primitives import PRIMITIVES, check_primitive, json_kind
from .profiles import ProfileCache
from .slicing import primitive_type_of, slice_matches
from .tree import Constraint, ElementNode, ElementTree
from .values import differences, matches_fixed, matches_pattern
from .xhtml import check_xhtml

_REF = re.compile(r"(?:^|/)([A-Z][A-Za-z]+)/[A-Za-z0-9\-.]{1,64}(?:/_history/[A-Za-z0-9\-.]{1,64})?$")
_CHILDLESS = frozenset({"BackboneElement", "Element"})


class _Run:
    """State of one validate() call."""

    __slots__ = ("issues", "root", "unknown_extensions", "warned")

    def __init__(self, root: Any, unknown_extensions: str = "error") -> None:
        self.issues: list[Issue] = []
        self.root = root
        self.warned: set[str] = set()
        self.unknown_extensions = unknown_extensions

    def add(self, severity: str, code: str, diagnostics: str, expression: str) -> None:
        self.issues.append(Issue(severity, code, diagnostics, (expression,) if expression else ()))


class Validator:
    """Validates resources against the R4 base definitions and profiles from a :class:`DefinitionSource`.

    Build one per set of held conformance resources and reuse it: compiled trees and expansions are cached.
    """

    def __init__(self, definitions: DefinitionSource | None = None, *, unknown_extensions: str = "error") -> None:
        """``unknown_extensions``: the severity of an extension whose definition is not held (``error``, as
        the HL7 validator, or ``warning``, the lenient reading — FHIR_VALIDATE_UNKNOWN_EXTENSIONS)."""
        self.source = definitions if definitions is not None else DefinitionSource()
        self.unknown_extensions = unknown_extensions
        self.profiles = ProfileCache(self.source)
        self._merged: dict[tuple[int, int], tuple[Constraint, ...]] = {}
        self._type_tree_cache: dict[tuple[int, str], tuple[ElementTree, ...]] = {}
        self._context_ok: dict[tuple[str, int, int, str], bool | str] = {}  # see extensions._check_context

    # -- public API ---------------------------------------------------------------------------------------

    def validate(
        self,
        resource: Any,
        profiles: Iterable[str] = (),
        *,
        meta_profiles: bool = False,
        unknown_extensions: str | None = None,
    ) -> list[Issue]:
        """Issues (errors, warnings, information) for ``resource`` against its base type and ``profiles``.

        ``profiles`` are canonical urls (``|version`` ignored); an unknown one is an error. With
        ``meta_profiles`` the profiles the resource claims in ``meta.profile`` are checked too (unknown
        ones are a warning, as the HL7 validator does). ``unknown_extensions`` overrides the validator's
        severity for extensions it has no definition of (writes store them: they may be ignored).
        """
        run = _Run(resource, unknown_extensions or self.unknown_extensions)
        if not isinstance(resource, dict) or not isinstance(resource.get("resourceType"), str):
            run.add("error", "structure", "A resource must be a JSON object with a string resourceType", "")
            return run.issues
        rtype = resource["resourceType"]
        urls = [p for p in profiles]
        claimed = (
            resource.get("meta", {}).get("profile", []) if isinstance(resource.get("meta"), dict) else []
        )
        if meta_profiles and isinstance(claimed, list):
            for url in claimed:
                if isinstance(url, str) and url not in urls:
                    if self.profiles.get(url).tree is None:
                        run.add(
                            "warning",
                            "not-found",
                            f"The profile {url} claimed in meta.profile is not known "
                            "to this server; it was not checked",
                            f"{rtype}.meta.profile",
                        )
                    else:
                        urls.append(url)
        trees: list[ElementTree] = []
        for url in urls:
            compiled = self.profiles.get(url)
            run.issues.extend(compiled.issues)
            if compiled.tree is None:
                continue
            if compiled.tree.type != rtype:
                run.add(
                    "error",
                    "processing",
                    f"The profile {url} is for {compiled.tree.type} resources, not {rtype}",
                    rtype,
                )
                continue
            trees.append(compiled.tree)
        if not trees:
            base = self.profiles.type_tree(rtype)
            if base is None or base.kind != "resource":
                run.add("error", "not-supported", f"Unknown resource type {rtype!r}", "")
                return run.issues
            trees.append(base)
        try:
            for tree in trees:  # a constraining profile's snapshot already holds every rule of the base
                self._object(run, tree.root, tree, resource, rtype, rtype, resource)
        except (RecursionError, TypeError, ValueError, AttributeError, KeyError) as exc:
            # a bug in the validator, not the client's fault; say so rather than turn $validate into a 500
            run.add(
                "error",
                "exception",
                f"The validator failed ({type(exc).__name__}); the resource was not fully checked",
                rtype,
            )
        return _dedupe(run.issues)

    def check_structure_definition(self, sd: Mapping[str, Any]) -> list[Issue]:
        """Issues that make a StructureDefinition unusable (call before storing a profile)."""
        source = DefinitionSource([*self.source.held_structure_definitions(), sd], base=self.source.base)
        return list(ProfileCache(source).get(str(sd.get("url", ""))).issues)

    # -- the walk -----------------------------------------------------------------------------------------

    def _object(
        self,
        run: _Run,
        node: ElementNode,
        tree: ElementTree,
        obj: dict[str, Any],
        path: str,
        type_code: str,
        res: Any,
    ) -> None:
        """A complex value: its children (from the snapshot, else from its type's tree) and its rules."""
        kids = node
        type_path = node.path
        if node.content_reference:
            ref = tree.resolve_reference(node.content_reference)
            if ref is None:
                run.add("error", "processing", f"contentReference {node.content_reference} not found", path)
                return
            kids, type_path = ref, ref.path
        if kids.children:
            self._children(run, kids, tree, obj, path, res)
            self._invariants(run, node.constraints, obj, type_path, path, res)
        else:
            subs = self._type_trees(run, node, type_code, path)
            if not subs:
                return
            if len(subs) == 1:
                self._type_content(run, node, subs[0], obj, path, res)
            else:
                self._any_of(
                    run, subs, path, lambda trial, sub: self._type_content(trial, node, sub, obj, path, res)
                )
        self._value_rules(run, node, type_code, obj, path)

    def _type_content(
        self, run: _Run, node: ElementNode, sub: ElementTree, obj: dict[str, Any], path: str, res: Any
    ) -> None:
        """The children and invariants of a value whose element defers to its type's (or profile's) tree."""
        self._children(run, sub.root, sub, obj, path, res)
        type_path = sub.type if sub.type not in _CHILDLESS else node.path
        self._invariants(run, self._merge(node, sub.root), obj, type_path, path, res)

    def _any_of(
        self, run: _Run, trees: tuple[ElementTree, ...], path: str, check: Callable[[_Run, ElementTree], None]
    ) -> None:
        """An element whose type lists several profiles: the value must conform to one of them (any one).

        Each profile is tried on a scratch run; the first without errors wins and its warnings are kept.
        When none fits, one error lists each profile's first problem, followed by the first profile's issues.
        """
        attempts: list[tuple[ElementTree, _Run]] = []
        for sub in trees:
            trial = _Run(run.root, run.unknown_extensions)
            trial.warned = set(run.warned)
            check(trial, sub)
            if not any(i.severity in ("error", "fatal") for i in trial.issues):
                run.issues.extend(trial.issues)
                run.warned = trial.warned
                return
            attempts.append((sub, trial))
        reasons = "; ".join(
            f"{sub.url}: {next(i.diagnostics for i in trial.issues if i.severity in ('error', 'fatal'))}"
            for sub, trial in attempts
        )
        run.add("error", "structure", f"The value conforms to none of the allowed profiles ({reasons})", path)
        run.issues.extend(attempts[0][1].issues)
        run.warned = attempts[0][1].warned

    def _type_trees(self, run: _Run, node: ElementNode, type_code: str, path: str) -> tuple[ElementTree, ...]:
        trees = self._trees_of(node, type_code)
        if not trees:
            key = f"type:{type_code}"
            if key not in run.warned:
                run.warned.add(key)
                run.add(
                    "warning",
                    "not-found",
                    f"No definition for type {type_code!r} or its profile; its content was not checked",
                    path,
                )
        return trees

    def _trees_of(self, node: ElementNode, type_code: str) -> tuple[ElementTree, ...]:
        """The known profiles ``node`` lists for ``type_code`` (any one will do), else the type's own tree."""
        key = (id(node), type_code)
        found = self._type_tree_cache.get(key)
        if found is None:
            found = tuple(
                tree
                for t in node.types
                if t.code == type_code
                for url in t.profiles
                if (tree := self.profiles.tree(url)) is not None
            )
            if not found:
                base = self.profiles.type_tree(type_code)
                found = (base,) if base is not None else ()
            self._type_tree_cache[key] = found
        return found

    def _merge(self, node: ElementNode, type_root: ElementNode) -> tuple[Constraint, ...]:
        key = (id(node), id(type_root))
        merged = self._merged.get(key)
        if merged is None:
            keys = {c.key for c in node.constraints}
            merged = node.constraints + tuple(c for c in type_root.constraints if c.key not in keys)
            self._merged[key] = merged
        return merged

    def _children(
        self, run: _Run, kids: ElementNode, tree: ElementTree, obj: dict[str, Any], path: str, res: Any
    ) -> None:
        names = kids.json_names
        present: dict[int, tuple[ElementNode, list[str]]] = {}
        for key in obj:
            if key == "resourceType" and kids.path == tree.type and tree.kind == "resource":
                continue
            name = key[1:] if key[0] == "_" else key
            entry = names.get(name)
            if entry is None or (key != name and not _primitive_entry(entry)):
                run.add("error", "structure", _unknown(key, kids, names), f"{path}.{key}")
                choice = _choice_for(key, kids) if tree.type == "Extension" else None
                if choice is not None:
                    # an extension's value of a type its definition does not allow: the HL7 validator reports
                    # the type, not also a missing value (elsewhere an unknown name is both)
                    present.setdefault(id(choice), (choice, []))
                continue
            owner = entry[2]
            found = present.get(id(owner))
            if found is None:
                present[id(owner)] = (owner, [key])
            else:
                found[1].append(key)
        for child in kids.required:
            if id(child) not in present:
                where = f"{path}.{child.name.removesuffix('[x]')}"
                self._cardinality(run, child, 0, where)
                for sl in child.slices:
                    if sl.min > 0:
                        self._cardinality(run, sl, 0, where)
        for child, keys in present.values():
            if not keys:
                continue
            if child.name.endswith("[x]"):
                distinct = sorted({k.lstrip("_") for k in keys})
                if len(distinct) > 1:
                    run.add(
                        "error",
                        "structure",
                        f"Only one of {child.name} may be present, found {', '.join(distinct)}",
                        f"{path}.{child.name[:-3]}",
                    )
                for k in distinct:
                    self._property(run, names[k][0], names[k][1] or "", obj, k, f"{path}.{k}", tree, res)
            else:
                self._property(
                    run, child, names[child.name][1] or "", obj, child.name, f"{path}.{child.name}", tree, res
                )

    def _property(
        self,
        run: _Run,
        node: ElementNode,
        type_code: str,
        obj: dict[str, Any],
        key: str,
        path: str,
        tree: ElementTree,
        res: Any,
    ) -> None:
        """One JSON property (and its ``_key`` companion for primitives): shape, cardinality, items."""
        value, extra = obj.get(key), obj.get("_" + key)
        if node.repeats:
            if value is not None and not isinstance(value, list):
                run.add("error", "structure", f"{key} repeats, so it must be a JSON array", path)
                return
            if extra is not None and not isinstance(extra, list):
                run.add("error", "structure", f"_{key} must be a JSON array (as {key} repeats)", path)
                return
            if value == [] or extra == []:
                run.add("error", "structure", f"Array cannot be empty: leave {key} out rather than send []", path)
            values: list[Any] = value or []
            extras: list[Any] = extra or []
            if values and extras and len(values) != len(extras):
                run.add("error", "structure", f"{key} and _{key} must have the same number of items", path)
            count = max(len(values), len(extras))
            items = [
                (
                    values[i] if i < len(values) else None,
                    extras[i] if i < len(extras) else None,
                    f"{path}[{i}]",
                )
                for i in range(count)
            ]
        else:
            if isinstance(value, list) or isinstance(extra, list):
                run.add("error", "structure", f"{key} does not repeat, so it must not be a JSON array", path)
                return
            items = [(value, extra, path)]
        self._cardinality(run, node, len(items), path)
        if node.slices or node.slicing is not None or key in ("extension", "modifierExtension"):
            self._sliced(run, node, type_code, items, path, tree, res)
            return
        for item, ext, item_path in items:
            self._item(run, node, type_code, item, ext, item_path, tree, res)

    def _cardinality(self, run: _Run, node: ElementNode, count: int, path: str) -> None:
        what = f"slice {node.slice_name!r} of " if node.slice_name else ""
        if count < node.min:
            run.add(
                "error",
                "required",
                f"{what}{node.path} requires at least {node.min} item(s), found {count}",
                path,
            )
        if node.max is not None and count > node.max:
            if node.max == 0:
                run.add("error", "structure", f"{what}{node.path} is not allowed here (max 0)", path)
            else:
                run.add(
                    "error",
                    "structure",
                    f"{what}{node.path} allows at most {node.max} item(s), found {count}",
                    path,
                )

    def _item(
        self,
        run: _Run,
        node: ElementNode,
        type_code: str,
        item: Any,
        ext: Any,
        path: str,
        tree: ElementTree,
        res: Any,
    ) -> None:
        if not type_code:
            type_code = node.types[0].code if node.types else "BackboneElement"
        if type_code in PRIMITIVES or type_code.startswith("http://hl7.org/fhirpath/System."):
            self._primitive(run, node, type_code, item, ext, path, tree, res)
            return
        if ext is not None:
            run.add(
                "error", "structure", f"_{path.rsplit('.', 1)[-1]} is only allowed for primitive values", path
            )
        if not isinstance(item, dict):
            run.add(
                "error", "structure", f"Expected a JSON object for {type_code}, found {json_kind(item)}", path
            )
            return
        if type_code == "Resource" or self.source.is_resource_type(type_code):
            self._contained(run, node, item, path)
            return
        self._object(run, node, tree, item, path, type_code, res)

    def _contained(self, run: _Run, node: ElementNode, item: dict[str, Any], path: str) -> None:
        rtype = item.get("resourceType")
        if not isinstance(rtype, str):
            run.add("error", "structure", "A resource must have a resourceType", path)
            return
        allowed = {t.code for t in node.types}
        found = self._trees_of(node, rtype) if rtype in allowed else (self.profiles.type_tree(rtype),)
        subs = tuple(sub for sub in found if sub is not None and sub.kind == "resource")
        if not subs:
            run.add("error", "structure", f"Unknown resource type {rtype!r}", path)
            return
        if "Resource" not in allowed and rtype not in allowed:
            run.add(
                "error",
                "structure",
                f"A {rtype} is not allowed here (expected {', '.join(sorted(allowed))})",
                path,
            )
        if len(subs) == 1:
            self._object(run, subs[0].root, subs[0], item, path, rtype, item)
        else:
            self._any_of(
                run,
                subs,
                path,
                lambda trial, sub: self._object(trial, sub.root, sub, item, path, rtype, item),
            )
        constraints = node.constraints
        if constraints:
            self._invariants(run, constraints, item, rtype, path, item)

    def _primitive(
        self,
        run: _Run,
        node: ElementNode,
        type_code: str,
        item: Any,
        ext: Any,
        path: str,
        tree: ElementTree,
        res: Any,
    ) -> None:
        if type_code.startswith("http://hl7.org/fhirpath/System."):
            type_code = "string"
        if item is not None:
            if type_code == "xhtml" and isinstance(item, str):
                # parsed, not matched by regex: each illegal name is its own issue, as the HL7 validator says
                for text in check_xhtml(item).problems:
                    run.add("error", "value", text, path)
                problem = None
            else:
                problem = check_primitive(type_code, item)
            if problem is not None:
                run.add("error", "value", problem, path)
            else:
                self._limits(run, node, item, path)
                self._value_rules(run, node, type_code, item, path)
        elif ext is None:
            run.add("error", "structure", "A null needs a matching _ entry with an id or extension", path)
            return
        if ext is not None:
            if not isinstance(ext, dict):
                run.add("error", "structure", f"Expected a JSON object, found {json_kind(ext)}", path)
            else:
                element = self.profiles.type_tree("Element")
                if element is not None:
                    self._children(run, element.root, element, ext, path, res)
        if node.constraints:
            own = tuple(c for c in node.constraints if c.key != "ele-1")
            if own:
                self._invariants(run, own, item, type_code, path, res)
            # "" is no value either: the HL7 validator reports both the empty value and ele-1
            if (item is None or item == "") and not (isinstance(ext, dict) and (ext.get("extension") or ext.get("id"))):
                run.add(
                    "error",
                    "invariant",
                    "Constraint failed: ele-1: All FHIR elements must have a @value or children",
                    path,
                )

    def _limits(self, run: _Run, node: ElementNode, item: Any, path: str) -> None:
        if node.max_length is not None and isinstance(item, str) and len(item) > node.max_length:
            run.add(
                "error",
                "value",
                f"The value is {len(item)} characters long, the maximum is {node.max_length}",
                path,
            )
        try:
            if node.min_value is not None and item < node.min_value:
                run.add("error", "value", f"{item} is below the minimum {node.min_value}", path)
            if node.max_value is not None and item > node.max_value:
                run.add("error", "value", f"{item} is above the maximum {node.max_value}", path)
        except TypeError:
            pass

    def _value_rules(self, run: _Run, node: ElementNode, type_code: str, value: Any, path: str) -> None:
        if node.fixed is not None and not matches_fixed(value, node.fixed[1]):
            if isinstance(value, dict) and isinstance(node.fixed[1], dict):
                for where, text in differences(value, node.fixed[1], path, exact=True):
                    run.add("error", "value", f"{text} ({node.fixed[0]} {_show(node.fixed[1])})", where)
            else:
                run.add(
                    "error", "value", f"The value must be exactly {_show(node.fixed[1])} ({node.fixed[0]})", path
                )
        if node.pattern is not None and not matches_pattern(value, node.pattern[1]):
            if isinstance(value, dict) and isinstance(node.pattern[1], dict):
                # one issue per element that departs from the pattern, as the HL7 validator reports them
                for where, text in differences(value, node.pattern[1], path, exact=False):
                    run.add("error", "value", f"{text} ({node.pattern[0]} {_show(node.pattern[1])})", where)
            else:
                run.add(
                    "error",
                    "value",
                    f"The value must match the pattern {_show(node.pattern[1])} ({node.pattern[0]})",
                    path,
                )
        if isinstance(value, dict) and (isinstance(node.min_value, dict) or isinstance(node.max_value, dict)):
            _quantity_limits(run, node, value, path)
        if check_known_codes(self.source, type_code, value, path, run.issues):
            pass
        elif node.binding is not None:
            check_binding(self.source, node.binding[0], node.binding[1], type_code, value, path, run.issues)
        if type_code == "Reference" and isinstance(value, dict):
            self._reference(run, node, value, path)

    def _reference(self, run: _Run, node: ElementNode, value: dict[str, Any], path: str) -> None:
        ref = value.get("reference")
        if isinstance(ref, str) and len(ref) > 1 and ref[0] == "#":
            # besides ref-1, the HL7 validator reports the reference it cannot resolve (two issues)
            contained = run.root.get("contained") if isinstance(run.root, dict) else None
            ids = {c.get("id") for c in contained if isinstance(c, dict)} if isinstance(contained, list) else set()
            if ref[1:] not in ids:
                run.add("error", "not-found", f"Unable to resolve resource {ref!r}: no contained resource has "
                        f"the id {ref[1:]!r}", path)
            return
        if not isinstance(ref, str) or ref.startswith(("urn:", "#")):
            return
        match = _REF.search(ref)
        if match is None:
            return
        rtype = match.group(1)
        if not self.source.is_resource_type(rtype):
            run.add("error", "structure", f"{rtype!r} in reference {ref!r} is not a resource type", path)
            return
        targets: set[str] = set()
        for t in node.types:
            if t.code == "Reference":
                for url in t.target_profiles:
                    tree = self.profiles.tree(url)
                    targets.add(tree.type if tree is not None else url.rsplit("/", 1)[-1])
        if targets and "Resource" not in targets and rtype not in targets:
            run.add(
                "error",
                "structure",
                f"The reference {ref!r} points to a {rtype}, but only {', '.join(sorted(targets))} are allowed here",
                path,
            )

    def _invariants(
        self, run: _Run, constraints: tuple[Constraint, ...], value: Any, type_path: str, path: str, res: Any
    ) -> None:
        for c in constraints:
            check = compile_invariant(c.expression, c.key)
            try:
                ok = check.evaluate(value, type_path, res, run.root)
            except InvariantError as exc:
                if c.key + c.expression not in run.warned:
                    run.warned.add(c.key + c.expression)
                    run.add(
                        "warning",
                        "processing",
                        f"Invariant {c.key} ({c.expression}) could not be evaluated, so it was not checked: {exc}",
                        path,
                    )
                continue
            if not ok:
                severity = "error" if c.severity == "error" else "warning"
                run.add(severity, "invariant", f"Constraint failed: {c.key}: {c.human}", path)

    # -- slices and extensions --------------------------------------------------------------------------

    def _sliced(
        self,
        run: _Run,
        node: ElementNode,
        type_code: str,
        items: list[tuple[Any, Any, str]],
        path: str,
        tree: ElementTree,
        res: Any,
    ) -> None:
        from .extensions import validate_sliced  # local: extensions imports this module's types

        validate_sliced(self, run, node, type_code, items, path, tree, res)


def bindings_without_strength(sd: Mapping[str, Any]) -> list[Issue]:
    """``ElementDefinition.binding.strength`` is 1..1: without it nobody can tell how strictly the value set
    applies, so storing the profile is refused with the element named rather than guessed at. (``$validate``
    of the StructureDefinition reports the same through the walk: ElementDefinition's own cardinality.)"""
    issues = []
    for part in ("differential", "snapshot"):
        elements = (sd.get(part) or {}).get("element") if isinstance(sd.get(part), dict) else None
        for i, el in enumerate(elements if isinstance(elements, list) else ()):
            binding = el.get("binding") if isinstance(el, dict) else None
            if isinstance(binding, dict) and not isinstance(binding.get("strength"), str):
                where = f"StructureDefinition.{part}.element[{i}].binding.strength"
                issues.append(
                    Issue(
                        "error",
                        "required",
                        f"The binding of {el.get('id') or el.get('path')} has no strength "
                        "(required, extensible, preferred or example)",
                        (where,),
                    )
                )
    return issues


def _primitive_entry(entry: tuple[ElementNode, str | None, ElementNode]) -> bool:
    node, code, _ = entry
    codes = {code} if code else node.type_codes
    return any(c in PRIMITIVES or c.startswith("http://hl7.org/fhirpath/") for c in codes)


def _quantity_limits(run: _Run, node: ElementNode, value: dict[str, Any], path: str) -> None:
    """``minValueQuantity``/``maxValueQuantity``: compared when the units agree (the same code and system,
    or a limit without units); a value in other units is not converted here."""
    amount = value.get("value")
    if isinstance(amount, bool) or not isinstance(amount, int | float | Decimal):
        return
    for limit, below in ((node.min_value, True), (node.max_value, False)):
        if not isinstance(limit, dict):
            continue
        bound = limit.get("value")
        if isinstance(bound, bool) or not isinstance(bound, int | float | Decimal):
            continue
        if any(limit.get(k) is not None and limit.get(k) != value.get(k) for k in ("code", "system")):
            continue
        unit = f" {limit.get('code') or limit.get('unit') or ''}".rstrip()
        if below and amount < bound:
            run.add("error", "value", f"The value {amount}{unit} is less than the permitted minimum {bound}{unit}",
                    path)
        elif not below and amount > bound:
            run.add("error", "value", f"The value {amount}{unit} is more than the permitted maximum {bound}{unit}",
                    path)


def _choice_for(key: str, kids: ElementNode) -> ElementNode | None:
    """The choice element ``valueFoo`` names (``value[x]``), when Foo is a type it does not allow."""
    for seg, child in kids.children.items():
        if child.is_choice and key.startswith(seg[:-3]) and key[len(seg) - 3 :][:1].isupper():
            return child
    return None


def _unknown(key: str, kids: ElementNode, names: Mapping[str, Any]) -> str:
    for seg, child in kids.children.items():
        if child.is_choice and key.startswith(seg[:-3]) and key[len(seg) - 3 :][:1].isupper():
            allowed = ", ".join(seg[:-3] + t.code[:1].upper() + t.code[1:] for t in child.types)
            return f"{key} is not an allowed type for {child.path} (allowed: {allowed})"
    if key.startswith("_"):
        return f"{key} is not allowed: {key[1:]} is not a primitive element of {kids.path}"
    return f"Unrecognized element {key!r} in {kids.path}"


def _show(value: Any) -> str:
    from .. import jsonio

    text = jsonio.dumps(value).decode()
    return text if len(text) <= 200 else text[:197] + "..."


def _dedupe(issues: list[Issue]) -> list[Issue]:
    seen: set[Issue] = set()
    out = []
    for issue in issues:
        if issue not in seen:
            seen.add(issue)
            out.append(issue)
    return out


__all__ = ["Validator", "DefinitionSource", "bindings_without_strength", "primitive_type_of", "slice_matches"]
