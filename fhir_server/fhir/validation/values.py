"""Comparing instance values with ``fixed[x]`` / ``pattern[x]`` and walking simple element paths.

``fixed`` means exactly equal (every property, no extra ones); ``pattern`` means the instance contains the
pattern: each property of the pattern is present and matches, each array item of the pattern matches some item
of the instance (profiling.html#pattern). Booleans never equal numbers (Python says ``True == 1``).

>>> matches_pattern({"coding": [{"system": "s", "code": "c", "display": "C"}]}, {"coding": [{"code": "c"}]})
True
>>> matches_fixed({"code": "c", "display": "C"}, {"code": "c"})
False
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any


def _scalar_equal(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    return bool(a == b)


def matches_fixed(instance: Any, fixed: Any) -> bool:
    if isinstance(fixed, dict):
        if not isinstance(instance, dict) or set(instance) != set(fixed):
            return False
        return all(matches_fixed(instance[k], v) for k, v in fixed.items())
    if isinstance(fixed, list):
        if not isinstance(instance, list) or len(instance) != len(fixed):
            return False
        return all(matches_fixed(i, f) for i, f in zip(instance, fixed, strict=True))
    return not isinstance(instance, dict | list) and _scalar_equal(instance, fixed)


def matches_pattern(instance: Any, pattern: Any) -> bool:
    if isinstance(pattern, dict):
        if not isinstance(instance, dict):
            return False
        return all(k in instance and matches_pattern(instance[k], v) for k, v in pattern.items())
    if isinstance(pattern, list):
        items = instance if isinstance(instance, list) else [instance]
        return all(any(matches_pattern(i, p) for i in items) for p in pattern)
    return not isinstance(instance, dict | list) and _scalar_equal(instance, pattern)


def differences(instance: Any, expected: Any, path: str, *, exact: bool) -> list[tuple[str, str]]:
    """Where ``instance`` departs from a ``fixed`` (``exact``) or ``pattern`` value: (location, message) per
    missing or different leaf, as the HL7 validator reports a complex fixed/pattern value (one issue each, at
    the nested element); an array of the pattern (a CodeableConcept's codings) not found is one issue at the
    element holding it.

    >>> differences({"system": "a"}, {"system": "b", "code": "c"}, "X.id[0]", exact=False)[0]
    ('X.id[0].system', "Value is 'a' but must be 'b'")
    """
    if not isinstance(expected, dict) or not isinstance(instance, dict):
        ok = matches_fixed(instance, expected) if exact else matches_pattern(instance, expected)
        if ok:
            return []
        if isinstance(expected, dict | list) or isinstance(instance, dict | list):
            return [(path, "The value does not match the value the profile requires")]
        return [(path, f"Value is {instance!r} but must be {expected!r}")]
    found: list[tuple[str, str]] = []
    for key, want in expected.items():
        where = f"{path}.{key}"
        if key not in instance:
            found.append((where, f"Missing element {key!r} - required by the profile's value"))
        elif isinstance(want, list):
            ok = matches_fixed(instance[key], want) if exact else matches_pattern(instance[key], want)
            if not ok:
                found.append((path, f"No {key} matches the value the profile requires"))
        else:
            found.extend(differences(instance[key], want, where, exact=exact))
    if exact:
        found.extend((f"{path}.{key}", f"Element {key!r} is not in the profile's fixed value")
                     for key in instance if key not in expected)
    return found


_EXTENSION_CALL = re.compile(r"extension\(['\"]([^'\"]+)['\"]\)")
_SEGMENTS = re.compile(r"(extension\([^)]*\)|[^.]+)")


def path_segments(path: str) -> list[str]:
    """``"extension('http://x.org/a.b').value"`` → ``["extension('http://x.org/a.b')", "value"]``."""
    return [seg for seg in _SEGMENTS.findall(path) if seg != "$this"]


def select(value: Any, path: str) -> Iterator[Any]:
    """Values at a discriminator path (``$this``, ``a.b``, ``extension('url')``, choice names ``value``).

    ``resolve()`` and other functions are not followed; callers treat such paths as not matching.
    """
    current = [value]
    for seg in path_segments(path):
        found: list[Any] = []
        ext = _EXTENSION_CALL.fullmatch(seg)
        for item in current:
            if not isinstance(item, dict):
                continue
            if ext is not None:
                found.extend(
                    e
                    for e in item.get("extension", ())
                    if isinstance(e, dict) and e.get("url") == ext.group(1)
                )
                continue
            if "(" in seg:
                raise ValueError(f"unsupported discriminator path segment {seg!r}")
            found.extend(children(item, seg))
        current = found
    yield from current


def select_typed(value: Any, path: str) -> list[tuple[Any, str | None]]:
    """Like :func:`select`, with the type a choice element's JSON name gives its value (``valueQuantity`` →
    Quantity, ``valueString`` → string), for ``type`` discriminators; None where the name does not say."""
    head, _, last = path.rpartition(".")
    parents = list(select(value, head)) if head else [value]
    out: list[tuple[Any, str | None]] = []
    for parent in parents:
        if not isinstance(parent, dict):
            continue
        if last in parent:
            items = parent[last] if isinstance(parent[last], list) else [parent[last]]
            out.extend((i, None) for i in items if i is not None)
            continue
        for key, child in parent.items():
            if key.startswith(last) and key[len(last) : len(last) + 1].isupper():
                name = key[len(last) :]
                code = name[:1].lower() + name[1:] if name in _PRIMITIVE_NAMES else name
                items = child if isinstance(child, list) else [child]
                out.extend((i, code) for i in items if i is not None)
    return out


_PRIMITIVE_NAMES = frozenset({
    "Base64Binary", "Boolean", "Canonical", "Code", "Date", "DateTime", "Decimal", "Id", "Instant", "Integer",
    "Markdown", "Oid", "PositiveInt", "String", "Time", "UnsignedInt", "Uri", "Url", "Uuid",
})


def children(item: dict[str, Any], name: str, primitive_extensions: bool = False) -> list[Any]:
    """The values of element ``name`` of a JSON object: a list flattened, a choice found by its typed name
    (``value`` → ``valueString``), and — with ``primitive_extensions`` — a primitive's ``_name`` object.

    >>> children({"valueQuantity": {"value": 1}}, "value")
    [{'value': 1}]
    """
    child = item.get(name)
    if child is None and primitive_extensions:
        child = item.get("_" + name)
    if child is None:
        child = next((v for k, v in item.items() if k.startswith(name) and k[len(name) : len(name) + 1].isupper()),
                     None)
    if isinstance(child, list):
        return [c for c in child if c is not None]
    return [] if child is None else [child]
