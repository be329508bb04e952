"""Invariants (``ElementDefinition.constraint``): FHIRPath compiled once, with native twins for the hot ones.

fhirpathpy interprets a verbose parse tree (≈20–150 µs per evaluation here), and R4 puts ``ele-1`` on every
element, ``ext-1`` on every extension and ``ref-1`` on every Reference. Evaluating those through FHIRPath
would cost more than the rest of validation together, so the invariants whose *exact* official expression is
listed in :data:`NATIVE` run as Python. Everything else goes through fhirpathpy, compiled once per expression
text and cached for the process. An expression fhirpathpy cannot parse or evaluate is reported (as a warning
naming the invariant) instead of raised: a profile's invariant must never turn validation into a 500.

>>> check = compile_invariant("(identifier.count() + name.count()) > 0")
>>> check.evaluate({"name": "x"}, "Organization", {"name": "x"}, {"name": "x"})
True
"""

from __future__ import annotations

import contextvars
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import fhirpathpy
from fhirpathpy.engine.nodes import ResourceNode
from fhirpathpy.models import models

from fhir_server.fhir.validation.values import children
from fhir_server.fhir.validation.xhtml import check_xhtml

_R4 = models["r4"]


def _has_value(inputs: list[Any]) -> list[bool]:
    """FHIRPath hasValue(), which fhirpathpy lacks: a single primitive with a value."""
    return [len(inputs) == 1 and inputs[0] is not None and not isinstance(inputs[0], dict | list)]


_ROOT: contextvars.ContextVar[Any] = contextvars.ContextVar("invariant_root", default=None)
_LITERAL = re.compile(r"(?:^|/)([A-Z][A-Za-z]+)/([A-Za-z0-9\-.]{1,64})(?:/_history/[A-Za-z0-9\-.]{1,64})?$")


def resolve_reference(reference: Any, root: Any) -> dict[str, Any] | None:
    """The resource a Reference (or reference string) points to, as far as ``root`` holds or names it."""
    ref = reference.get("reference") if isinstance(reference, dict) else reference
    if not isinstance(ref, str) or not isinstance(root, dict):
        return None
    if ref == "#":
        return root if isinstance(root, dict) else None
    if ref.startswith("#"):
        return next((c for c in root.get("contained") or () if isinstance(c, dict) and c.get("id") == ref[1:]), None)
    if root.get("resourceType") == "Bundle":
        for entry in root.get("entry") or ():
            if isinstance(entry, dict) and isinstance(entry.get("resource"), dict):
                full = entry.get("fullUrl")
                if isinstance(full, str) and (full == ref or full.endswith("/" + ref)):
                    return entry["resource"]
    match = _LITERAL.search(ref)
    if match is not None:  # held elsewhere (on this server): its type is known, its content is not needed here
        return {"resourceType": match.group(1), "id": match.group(2)}
    return None


def _resolve(inputs: list[Any]) -> list[Any]:
    """FHIRPath resolve(), which fhirpathpy lacks: contained (``#id``, ``#``), Bundle entries by fullUrl, and a
    literal ``Type/id`` as a resource of that type (so ``member.resolve() is Practitioner`` can be judged)."""
    root = _ROOT.get()
    found = (resolve_reference(i, root) for i in inputs)
    return [ResourceNode.create_node(r, r.get("resourceType")) for r in found if isinstance(r, dict)]


_OPTIONS = {
    "traceFn": lambda *args: None,  # .trace() in dom-3 would print to stdout
    "userInvocationTable": {
        "hasValue": {"fn": _has_value, "arity": {0: []}},
        "resolve": {"fn": _resolve, "arity": {0: []}},
    },
}


class InvariantError(Exception):
    """The expression could not be compiled or evaluated; ``str()`` says why."""


def _walk(value: Any) -> Iterator[Any]:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            yield item
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def _ele_1(value: Any, *_: Any) -> bool:
    if isinstance(value, dict):
        return any(k != "id" for k in value)
    return value is not None


def _ext_1(value: Any, *_: Any) -> bool:
    if not isinstance(value, dict):
        return True
    has_value = any(k.startswith("value") for k in value)
    return bool(value.get("extension")) != has_value


def _contained(value: Any) -> list[Any]:
    contained = value.get("contained") if isinstance(value, dict) else None
    return contained if isinstance(contained, list) else []


def _dom_2(value: Any, *_: Any) -> bool:
    return not any(isinstance(c, dict) and c.get("contained") for c in _contained(value))


def _dom_3(value: Any, resource: Any, root: Any) -> bool:
    contained = _contained(value)
    if not contained:
        return True
    refs: set[str] = set()
    for node in _walk(resource):
        for key, item in node.items():
            if isinstance(item, str) and item.startswith("#"):
                refs.add(item)
            elif key == "reference" and isinstance(item, str):
                refs.add(item)
    for c in contained:
        if not isinstance(c, dict):
            continue
        if ("#" + str(c.get("id"))) in refs:
            continue
        if any(n.get("reference") == "#" for n in _walk(c)):
            continue
        return False
    return True


def _dom_4(value: Any, *_: Any) -> bool:
    for c in _contained(value):
        meta = c.get("meta") if isinstance(c, dict) else None
        if isinstance(meta, dict) and ("versionId" in meta or "lastUpdated" in meta):
            return False
    return True


def _dom_5(value: Any, *_: Any) -> bool:
    return not any(
        isinstance(c, dict) and isinstance(c.get("meta"), dict) and c["meta"].get("security")
        for c in _contained(value)
    )


def _dom_6(value: Any, *_: Any) -> bool:
    text = value.get("text") if isinstance(value, dict) else None
    return isinstance(text, dict) and "div" in text


def _ref_1(value: Any, resource: Any, root: Any) -> bool:
    ref = value.get("reference") if isinstance(value, dict) else None
    if not isinstance(ref, str) or not ref.startswith("#"):
        return True
    if ref == "#":  # a contained resource pointing at its container (references.html#contained)
        return resource is not root
    ids = {c.get("id") for c in _contained(root) if isinstance(c, dict)}
    return ref[1:] in ids


_TAGS = re.compile(r"<[^>]*>")


def _txt_1(value: Any, *_: Any) -> bool:
    """htmlChecks(): the xhtml subset — parsed, only the allowed elements and attributes (:mod:`.xhtml`)."""
    return not isinstance(value, str) or check_xhtml(value).subset_ok


def _txt_2(value: Any, *_: Any) -> bool:
    """htmlChecks(): some non-whitespace content."""
    if not isinstance(value, str):
        return True
    return bool(_TAGS.sub("", value).strip()) or "<img" in value


_DOM_3 = (
    "contained.where((('#'+id in (%resource.descendants().reference | %resource.descendants().as(canonical)"
    " | %resource.descendants().as(uri) | %resource.descendants().as(url))) or descendants().where("
    "reference = '#').exists() or descendants().where(as(canonical) = '#').exists() or descendants()."
    "where(as(canonical) = '#').exists()).not()).trace('unmatched', id).empty()"
)

NativeFn = Callable[[Any, Any, Any], bool]
NATIVE: dict[str, NativeFn] = {
    "hasValue() or (children().count() > id.count())": _ele_1,
    "extension.exists() != value.exists()": _ext_1,
    "contained.contained.empty()": _dom_2,
    _DOM_3: _dom_3,
    "contained.meta.versionId.empty() and contained.meta.lastUpdated.empty()": _dom_4,
    "contained.meta.security.empty()": _dom_5,
    "text.`div`.exists()": _dom_6,
    "reference.startsWith('#').not() or (reference.substring(1).trace('url') in %rootResource.contained.id"
    ".trace('ids'))": _ref_1,
    "htmlChecks()": _txt_1,
}
NATIVE_BY_KEY: dict[tuple[str, str], NativeFn] = {("txt-2", "htmlChecks()"): _txt_2}


_SIMPLE_EXISTS = re.compile(r"([A-Za-z][A-Za-z0-9]*(?:\.[A-Za-z][A-Za-z0-9]*)*)\.exists\(\)")


def _split_or(expression: str) -> list[str]:
    """Top-level ``or`` operands (outside parentheses and quotes)."""
    parts, depth, quote, start, i = [], 0, "", 0, 0
    while i < len(expression):
        ch = expression[i]
        if quote:
            quote = "" if ch == quote and expression[i - 1] != "\\" else quote
        elif ch in "'`":
            quote = ch
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif depth == 0 and expression.startswith(" or ", i):
            parts.append(expression[start:i].strip())
            start = i + 4
            i += 3
        i += 1
    parts.append(expression[start:].strip())
    return parts


def _exists(value: Any, path: tuple[str, ...]) -> bool:
    current = [value]
    for seg in path:
        found: list[Any] = []
        for item in current:
            if not isinstance(item, dict):
                continue
            found.extend(children(item, seg, primitive_extensions=True))
        if not found:
            return False
        current = found
    return True


def _exists_prefix(expression: str) -> tuple[tuple[tuple[str, ...], ...], bool]:
    """Leading ``a.b.exists() or ...`` operands as paths, and whether they are the whole expression.

    ``policy.exists() or policyRule.exists()`` (ppc-1) needs no FHIRPath at all; ``patient.exists() or
    scope.coding.where(...)...`` (ppc-2..5) needs it only when there is no patient.
    """
    paths: list[tuple[str, ...]] = []
    operands = _split_or(expression)
    for operand in operands:
        match = _SIMPLE_EXISTS.fullmatch(operand)
        if match is None:
            return tuple(paths), False
        paths.append(tuple(match.group(1).split(".")))
    return tuple(paths), True


@dataclass(frozen=True, slots=True)
class CompiledInvariant:
    expression: str
    native: NativeFn | None
    compiled: Any  # fhirpathpy's callable
    error: str | None  # why it could not be compiled
    exists_paths: tuple[tuple[str, ...], ...] = ()  # any of these present → the invariant holds
    exists_only: bool = False  # ...and when none is, it fails (no FHIRPath needed)

    def evaluate(self, value: Any, type_path: str, resource: Any, root: Any) -> bool:
        """True when the invariant holds on ``value`` (an element of type ``type_path``)."""
        if self.native is not None:
            return self.native(value, resource, root)
        if self.exists_paths:
            if any(_exists(value, p) for p in self.exists_paths):
                return True
            if self.exists_only:
                return False
        if self.error is not None:
            raise InvariantError(self.error)
        try:
            node = ResourceNode.create_node(value, type_path)
            token = _ROOT.set(root)
            try:
                result = self.compiled(node, {"resource": resource, "rootResource": root})
            finally:
                _ROOT.reset(token)
        except Exception as exc:  # noqa: BLE001 - fhirpathpy raises bare Exception for unsupported functions
            raise InvariantError(f"{type(exc).__name__}: {exc}") from None
        if result == [True]:
            return True
        if result == [False] or result == []:
            return False
        if len(result) == 1 and isinstance(result[0], bool):
            return result[0]
        raise InvariantError(f"expected a single boolean, got {result!r:.80}")


_cache: dict[tuple[str, str], CompiledInvariant] = {}


# Invariants published wrong in R4 4.0.1, as the HL7 validator corrects them: que-12 asks for enableBehavior
# when there is more than one enableWhen (questionnaire.html), but its expression only counted three or more.
CORRECTED: dict[tuple[str, str], str] = {
    ("que-12", "enableWhen.count() > 2 implies enableBehavior.exists()"):
        "enableWhen.count() >= 2 implies enableBehavior.exists()",
}


def compile_invariant(expression: str, key: str = "") -> CompiledInvariant:
    """Compile (once per process) an invariant expression; never raises."""
    expression = CORRECTED.get((key, expression), expression)
    cache_key = (key, expression) if (key, expression) in NATIVE_BY_KEY else ("", expression)
    found = _cache.get(cache_key)
    if found is not None:
        return found
    native = NATIVE_BY_KEY.get((key, expression)) or NATIVE.get(expression)
    compiled: Any = None
    error: str | None = None
    if native is None:
        try:
            compiled = fhirpathpy.compile(expression, _R4, _OPTIONS)
        except Exception as exc:  # noqa: BLE001 - the parser raises assorted exception types
            error = f"cannot parse: {type(exc).__name__}: {exc}"
    paths, only = _exists_prefix(expression) if native is None else ((), False)
    result = CompiledInvariant(expression, native, compiled, error, paths, only)
    _cache[cache_key] = result
    return result
