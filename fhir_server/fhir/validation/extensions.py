"""Sliced arrays and extensions: assign items to slices, count them, validate each against its slice.

Extensions are the common case: an ``extension`` array is (implicitly, in the base spec) sliced by ``url``.
An extension no slice claims is validated against the StructureDefinition its url names, when the server
knows it. An unknown extension is an error, as in the HL7 validator ("unknown, and not allowed here"), unless
its url is an example or tooling one (information only) or the lenient reading is chosen
(FHIR_VALIDATE_UNKNOWN_EXTENSIONS=warning; writes always take it: the data is stored); an unknown *modifier*
extension is always an error (the receiver cannot safely ignore it), and any unclaimed item is an error when
the slicing is closed.

A known extension used where its ``StructureDefinition.context`` does not allow it is an error (as in the HL7
validator): an element context matches the element's definition path, its path in the instance (indices
dropped), its type (``Period``; ``Element`` and ``Resource``/``DomainResource`` at a resource root match
broadly), and an ``extension`` context matches any extension. ``fhirpath`` contexts are not judged.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .invariants import resolve_reference
from .slicing import primitive_type_of, slice_matches
from .terminology import strip_version
from .tree import Discriminator, ElementNode, ElementTree

if TYPE_CHECKING:
    from .validator import Validator, _Run

_URL = (Discriminator("value", "url"),)
_INDEX = re.compile(r"\[\d+\]")
_XVER = re.compile(r"^http://hl7\.org/fhir/\d\.\d/StructureDefinition/extension-")
_QUANTITIES = frozenset({"Age", "Count", "Distance", "Duration", "MoneyQuantity", "SimpleQuantity"})


def validate_sliced(
    v: Validator,
    run: _Run,
    node: ElementNode,
    type_code: str,
    items: list[tuple[Any, Any, str]],
    path: str,
    tree: ElementTree,
    res: Any,
) -> None:
    is_ext = node.name in ("extension", "modifierExtension")
    slicing = node.slicing
    discriminators = slicing.discriminators if slicing is not None else (_URL if is_ext else ())
    rules = slicing.rules if slicing is not None else "open"
    assigned: list[ElementNode | None] = []
    for item, _, _ in items:
        match = None
        if item is not None and discriminators:
            for sl in node.slices:
                if _matches(v, run, item, sl, discriminators, res):
                    match = sl
                    break
        assigned.append(match)
    for sl in node.slices:
        v._cardinality(run, sl, sum(1 for a in assigned if a is sl), path)
    last = max((i for i, a in enumerate(assigned) if a is not None), default=-1)
    order = {id(sl): i for i, sl in enumerate(node.slices)}
    previous = -1
    for i, (item, ext, item_path) in enumerate(items):
        chosen = assigned[i]
        if chosen is not None:
            rank = order[id(chosen)]
            if slicing is not None and slicing.ordered and rank < previous:
                run.add(
                    "error",
                    "structure",
                    f"Item is in slice {chosen.slice_name!r}, which must come before "
                    f"slice {node.slices[previous].slice_name!r} (the slicing of {node.id} is ordered)",
                    item_path,
                )
            previous = max(previous, rank)
            if is_ext and isinstance(item, dict):
                _check_context(v, run, node, item, item_path, tree)
            code = chosen.types[0].code if len(chosen.types) == 1 else type_code
            v._item(run, chosen, code, item, ext, item_path, tree, res)
            continue
        if rules == "closed" and node.slices:
            run.add(
                "error",
                "structure",
                f"This item matches none of the slices defined for {node.id} "
                f"({', '.join(str(s.slice_name) for s in node.slices)}), and the slicing is closed",
                item_path,
            )
        elif rules == "openAtEnd" and i < last:
            run.add(
                "error",
                "structure",
                f"Items not in a slice of {node.id} must come after all sliced items "
                "(the slicing is openAtEnd)",
                item_path,
            )
        if is_ext and isinstance(item, dict):
            _check_context(v, run, node, item, item_path, tree)
            _extension_by_url(v, run, node, item, item_path, tree, res)
        else:
            v._item(run, node, type_code, item, ext, item_path, tree, res)


def _extension_by_url(
    v: Validator, run: _Run, node: ElementNode, item: dict[str, Any], path: str, tree: ElementTree, res: Any
) -> None:
    url = item.get("url")
    definition = v.profiles.tree(url) if isinstance(url, str) and url else None
    if definition is not None and definition.type == "Extension":
        v._object(run, definition.root, definition, item, path, "Extension", res)
        return
    if isinstance(url, str) and url:
        if node.name == "modifierExtension":
            run.add(
                "error",
                "structure",
                f"Unknown modifier extension {url}: it changes the meaning of the "
                "resource, so the resource cannot be accepted without its definition",
                path,
            )
        elif not url.startswith("#"):
            lenient = _example_url(url)
            severity = "information" if lenient else run.unknown_extensions
            run.add(
                severity,
                "structure" if severity == "error" else "not-found",
                f"The extension {url} is unknown, and not allowed here: only its general structure was "
                "checked; register its StructureDefinition to have it validated"
                if severity == "error"
                else f"Unknown extension {url}: only its general structure was checked",
                path,
            )
    v._item(run, node, "Extension", item, None, path, tree, res)


def _example_url(url: str) -> bool:
    """Urls the HL7 validator lets pass unknown (a hint only): examples (``example.org``, ``acme.com``),
    ``nema.org`` (DICOM), the tooling namespace, and cross-version extensions (``/fhir/5.0/...``) which are
    defined by rule rather than by a held StructureDefinition."""
    host = url.split("://", 1)[-1].split("/", 1)[0].lower()
    return (
        host.endswith(("example.org", "example.com", "acme.com", "nema.org"))
        or url.startswith("http://hl7.org/fhir/tools/StructureDefinition/")
        or _XVER.match(url) is not None
    )


def _check_context(
    v: Validator, run: _Run, node: ElementNode, item: dict[str, Any], path: str, tree: ElementTree
) -> None:
    """An error when a known extension is used on an element its ``context`` does not list."""
    url = item.get("url")
    if not isinstance(url, str) or not url:
        return
    host_path = path.rpartition(".")[0]  # Consent.provision.actor[0].role
    key = (url, id(node), id(tree), _INDEX.sub("", host_path))
    allowed = v._context_ok.get(key)
    if allowed is None:
        allowed = _context_allows(v, url, node, tree, key[3])
        v._context_ok[key] = allowed
    if allowed is not True:
        run.add(
            "error",
            "structure",
            f"The extension {url} is used on {host_path or node.path}, which its context does not "
            f"allow (context: {allowed})",
            path,
        )


def _context_allows(v: Validator, url: str, node: ElementNode, tree: ElementTree, host: str) -> bool | str:
    """True when ``url`` may be used at ``host``; else the contexts it allows, for the message."""
    sd = v.source.structure_definition(url)
    if sd is None or sd.get("type") != "Extension":
        return True
    contexts = sd.get("context")
    if not isinstance(contexts, list) or not contexts:
        return True
    host_def = node.path.rpartition(".")[0]  # the element's definition path, or its type (Period)
    if host_def == "Element":  # the extension of a primitive value: its type is not known here
        return True
    if host_def == tree.root.path:
        types = {tree.type, host_def}
        if tree.kind == "resource":
            types |= {"Resource", "DomainResource"}
    else:
        parent = tree.by_path.get(host_def)
        if parent is None:
            return True
        types = set(parent.type_codes)
    if types & _QUANTITIES:
        types.add("Quantity")
    shown = []
    for ctx in contexts:
        if not isinstance(ctx, Mapping):
            return True
        kind, expression = ctx.get("type"), ctx.get("expression")
        if not isinstance(expression, str) or kind not in ("element", "extension"):
            return True  # fhirpath (or malformed) contexts are not judged
        shown.append(f"{kind} {expression}")
        if kind == "extension":
            if "Extension" in types:
                return True
        elif expression in ("Element", "Base") or expression in (host_def, host) or expression in types:
            return True
        elif expression.endswith("[x]") and host.startswith(expression[:-3]):
            rest = host[len(expression) - 3 :]
            if rest[:1].isupper() and "." not in rest:
                return True
    return ", ".join(shown)


def _lookup(v: Validator, node: ElementNode, seg: str) -> ElementNode | None:
    kids: ElementNode | None = node
    if node.content_reference:
        return None
    if not node.children and node.types:
        t = node.types[0]
        sub = None
        for url in t.profiles:
            sub = v.profiles.tree(url)
            if sub is not None:
                break
        sub = sub or v.profiles.type_tree(t.code)
        kids = sub.root if sub is not None else None
    if kids is None:
        return None
    entry = kids.json_names.get(seg)
    if entry is not None:
        return entry[0]
    return kids.children.get(seg) or kids.children.get(seg + "[x]")


def _matches(
    v: Validator, run: _Run, item: Any, sl: ElementNode, discriminators: tuple[Discriminator, ...], res: Any
) -> bool:
    def conforms(value: Any, profiles: tuple[str, ...], code: str) -> bool:
        from .validator import _Run as Run

        for url in profiles:
            target = v.profiles.tree(url)
            if target is None or not isinstance(value, dict):
                continue
            sub = Run(run.root, run.unknown_extensions)
            v._object(sub, target.root, target, value, "", target.type or code, res)
            if not any(i.severity in ("error", "fatal") for i in sub.issues):
                return True
        return False

    def in_value_set(target: ElementNode, value: Any) -> bool:
        if target.binding is None:
            return False
        expansion = v.source.expansion(strip_version(target.binding[1]))
        if expansion is None:
            return False
        if isinstance(value, str):
            return expansion.contains(None, value) is True
        if isinstance(value, dict):
            codings = value.get("coding", [value])
            return any(
                isinstance(c, dict)
                and isinstance(c.get("code"), str)
                and expansion.contains(c.get("system"), c["code"]) is True
                for c in codings
            )
        return False

    def tree_type(url: str) -> str | None:
        tree = v.profiles.tree(url)
        return tree.type if tree is not None else url.rsplit("/", 1)[-1]

    return slice_matches(
        item,
        sl,
        discriminators,
        lookup=lambda n, s: _lookup(v, n, s),
        conforms=conforms,
        type_of=primitive_type_of,
        in_value_set=in_value_set,
        resolve=lambda ref: resolve_reference(ref, run.root),
        tree_type=tree_type,
    )
