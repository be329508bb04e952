"""Query pairs → :class:`SearchQuery`. Pure: definitions in, AST out, no store.

>>> q = parse_search("Patient", [("birthdate", "ge2000"), ("_count", "5")])
>>> q.filters[0].values[0].prefix, q.count
('ge', 5)
>>> parse_search("Patient", [("nope", "1")], strict=False).self_link_query()
''

Strict handling (``Prefer: handling=strict``) raises :class:`InvalidSearchParameter` for unknown parameters,
unknown modifiers and modifiers that do not apply to the parameter's type; lenient handling drops them, leaves
them out of the self link and reports them in ``SearchQuery.warnings``. Malformed values are errors either way.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from fhir_server.fhir.outcome import InvalidSearchParameter, Issue
from fhir_server.fhir.search import definitions as defs
from fhir_server.fhir.search.ast import CompositeValue, Filter, Has, Include, SearchQuery, SortKey, TokenValue
from fhir_server.fhir.search.values import (
    VALUE_PARSERS,
    parse_date,
    parse_missing,
    parse_reference,
    parse_string,
    parse_token,
    parse_uri,
    split_escaped,
    unescape,
)

DEFAULT_COUNT = 20
MAX_COUNT = 1000
MAX_CHAIN_DEPTH = 4

# Modifiers by parameter type (R4 search.html §3.1.1.5); ``type`` stands for ``:[Type]`` on references.
MODIFIERS: dict[str, frozenset[str]] = {
    "string": frozenset({"missing", "exact", "contains"}),
    "token": frozenset({"missing", "not", "text", "above", "below", "in", "not-in"}),
    "reference": frozenset({"missing", "identifier", "type"}),
    "date": frozenset({"missing"}),
    "number": frozenset({"missing"}),
    "quantity": frozenset({"missing"}),
    "uri": frozenset({"missing", "above", "below"}),
    "composite": frozenset({"missing"}),
    "special": frozenset(),
}
KNOWN_MODIFIERS = frozenset({"missing", "exact", "contains", "text", "not", "above", "below", "in", "not-in",
                             "identifier", "of-type", "iterate"})
IGNORED = frozenset({"_format", "_pretty"})  # the HTTP layer reads them
NOT_SUPPORTED = frozenset({"_text", "_content", "_query", "_filter", "_contained", "_containedType"})
SUMMARY = frozenset({"true", "text", "data", "count", "false"})
TOTAL = frozenset({"none", "estimate", "accurate"})


class _Dropped(Exception):
    """A parameter the server does not support (dropped in lenient mode)."""

    def __init__(self, message: str, code: str = "not-supported") -> None:
        super().__init__(message)
        self.message, self.code = message, code


@dataclass
class _State:
    resource_type: str | None
    strict: bool
    filters: list[Filter | Has] = field(default_factory=list)
    honoured: list[tuple[str, str]] = field(default_factory=list)
    warnings: list[Issue] = field(default_factory=list)
    options: dict[str, object] = field(default_factory=dict)
    types: tuple[str, ...] = ()
    max_count: int = MAX_COUNT


def _params(state_types: tuple[str, ...], resource_type: str | None) -> dict[str, defs.SearchParam]:
    if resource_type is not None:
        return defs.params_for(resource_type)
    return defs.common_params(state_types)


def _check_type(name: str, resource_type: str) -> None:
    if resource_type not in defs.resource_types():
        raise InvalidSearchParameter(f"'{resource_type}' in '{name}' is not an R4 resource type")


def _filter(resource_type: str | None, types: tuple[str, ...], name: str, value: str, depth: int = 0
            ) -> Filter | Has:
    """One ``name=value`` (name may carry a modifier, a chain or ``_has``)."""
    if depth > MAX_CHAIN_DEPTH:
        raise InvalidSearchParameter(f"Search parameter '{name}': chains deeper than {MAX_CHAIN_DEPTH} levels")
    if name.startswith("_has:"):
        return _has(resource_type, name, value, depth)
    head, dot, rest = name.partition(".")
    code, _, modifier = head.partition(":")
    params = _params(types, resource_type)
    if code in ("_id", "_lastUpdated", "_list"):
        if dot or modifier:
            raise _Dropped(f"Search parameter '{name}': modifiers and chains are not supported on {code}")
        return _special(resource_type, code, value)
    if code in NOT_SUPPORTED:
        raise _Dropped(f"Search parameter '{code}' is not supported by this server")
    p = params.get(code)
    if p is None:
        where = resource_type or "all resource types"
        raise _Dropped(f"Unknown search parameter '{code}' for {where}")
    if dot:
        return _chain(resource_type, p, modifier, rest, value, depth)
    return _plain(resource_type, p, modifier, value)


def _special(resource_type: str | None, code: str, value: str) -> Filter:
    if code == "_lastUpdated":
        return Filter(code, "special", (parse_date(code, value),), resource_type=resource_type)
    values = tuple(TokenValue(None, unescape(v)) for v in split_escaped(value, ",") if v)
    if not values:
        raise InvalidSearchParameter(f"Search parameter '{code}': empty value")
    return Filter(code, "special", values, resource_type=resource_type)


def _modifier_kind(p: defs.SearchParam, modifier: str) -> str:
    if not modifier:
        return ""
    if p.type == "reference" and modifier in defs.resource_types():
        if p.target and modifier not in p.target:
            raise InvalidSearchParameter(f"Search parameter '{p.code}': {modifier} is not a target "
                                         f"(targets: {', '.join(p.target)})")
        return "type"
    if modifier not in KNOWN_MODIFIERS and modifier not in defs.resource_types():
        raise _Dropped(f"Unknown modifier ':{modifier}' on search parameter '{p.code}'", "invalid")
    if modifier not in MODIFIERS[p.type]:
        raise _Dropped(f"Modifier ':{modifier}' does not apply to {p.type} parameter '{p.code}'", "invalid")
    return modifier


def _plain(resource_type: str | None, p: defs.SearchParam, modifier: str, value: str) -> Filter:
    kind = _modifier_kind(p, modifier)
    base = Filter(p.code, p.type, resource_type=resource_type)
    if kind == "missing":
        return Filter(p.code, p.type, (), "missing", parse_missing(p.code, value), resource_type)
    raw_values = [v for v in split_escaped(value, ",")]
    if any(v == "" for v in raw_values):
        raise InvalidSearchParameter(f"Search parameter '{p.code}': empty value in '{value}'")
    if kind == "identifier":
        return Filter(p.code, p.type, tuple(parse_token(p.code, v) for v in raw_values), kind,
                      resource_type=resource_type)
    if kind == "text":
        return Filter(p.code, p.type, tuple(parse_string(p.code, v) for v in raw_values), kind,
                      resource_type=resource_type)
    if kind in ("in", "not-in") or (p.type == "uri" and kind in ("above", "below")):
        return Filter(p.code, p.type, tuple(parse_uri(p.code, v) for v in raw_values), kind,
                      resource_type=resource_type)
    if p.type == "reference":
        target = modifier if kind == "type" else None
        vals = tuple(parse_reference(p.code, v, target, p.target) for v in raw_values)
        return Filter(p.code, p.type, vals, kind or None, resource_type=resource_type, target_type=target)
    if p.type == "composite":
        return _composite(resource_type, p, raw_values)
    parser = VALUE_PARSERS[p.type]
    return Filter(base.name, base.type, tuple(parser(p.code, v) for v in raw_values), kind or None,
                  resource_type=resource_type)


def _composite(resource_type: str | None, p: defs.SearchParam, raw_values: list[str]) -> Filter:
    params = defs.params_for(resource_type or "Resource")
    comps = []
    for c in p.component:
        cp = params.get(c.param)
        if cp is None or cp.type not in VALUE_PARSERS:
            raise _Dropped(f"Composite parameter '{p.code}' is not supported")
        comps.append((cp.code, cp.type))
    values = []
    for raw in raw_values:
        parts = split_escaped(raw, "$")
        if len(parts) != len(comps):
            raise InvalidSearchParameter(f"Search parameter '{p.code}': '{raw}' needs {len(comps)} "
                                         f"'$'-separated parts")
        values.append(CompositeValue(tuple(VALUE_PARSERS[t](p.code, part)
                                           for (_, t), part in zip(comps, parts, strict=True))))
    return Filter(p.code, "composite", tuple(values), resource_type=resource_type, components=tuple(comps))


def _chain(resource_type: str | None, p: defs.SearchParam, modifier: str, rest: str, value: str,
           depth: int) -> Filter:
    if p.type != "reference":
        raise InvalidSearchParameter(f"Search parameter '{p.code}' is a {p.type} parameter: it cannot be chained")
    if modifier and modifier not in defs.resource_types():
        raise InvalidSearchParameter(f"Search parameter '{p.code}:{modifier}': only a resource type may "
                                     f"precede a chain")
    candidates = (modifier,) if modifier else p.target
    inner_code = rest.split(".", 1)[0].split(":", 1)[0]
    usable = tuple(t for t in candidates
                   if inner_code in ("_id", "_lastUpdated") or inner_code.startswith("_has")
                   or inner_code in defs.params_for(t))
    if not usable:
        raise InvalidSearchParameter(f"Search parameter '{p.code}.{rest}': no target type of '{p.code}' has "
                                     f"a parameter '{inner_code}'")
    inners = []
    for t in usable:
        try:
            inners.append(_filter(t, (), rest, value, depth + 1))
        except _Dropped as exc:
            raise InvalidSearchParameter(exc.message, code=exc.code) from None
    return Filter(p.code, "reference", (), None, resource_type=resource_type, target_type=modifier or None,
                  chain=inners[0] if len(inners) == 1 else _common_chain(inners), chain_types=usable)


def _common_chain(inners: list[Filter | Has]) -> Filter | Has:
    """The inner filter is the same shape on every target type; keep one (the compiler applies it to each)."""
    first = inners[0]
    if isinstance(first, Filter):
        from dataclasses import replace

        return replace(first, resource_type=None)
    return first


def _has(resource_type: str | None, name: str, value: str, depth: int) -> Has:
    parts = name.split(":", 3)
    if len(parts) != 4 or not all(parts):
        raise InvalidSearchParameter(f"'{name}' is not a _has parameter (expected _has:Type:reference:param)")
    _, source, ref, rest = parts
    _check_type(name, source)
    p = defs.params_for(source).get(ref)
    if p is None or p.type != "reference":
        raise InvalidSearchParameter(f"'{name}': '{ref}' is not a reference parameter of {source}")
    if resource_type and p.target and resource_type not in p.target:
        raise InvalidSearchParameter(f"'{name}': {source}.{ref} never refers to {resource_type}")
    try:
        inner = _filter(source, (), rest, value, depth + 1)
    except _Dropped as exc:
        raise InvalidSearchParameter(exc.message, code=exc.code) from None
    return Has(source, ref, inner)


def _include(state: _State, name: str, value: str) -> None:
    reverse = name.startswith("_revinclude")
    modifier = name.partition(":")[2]
    if modifier not in ("", "iterate", "recurse"):
        raise _Dropped(f"Unknown modifier ':{modifier}' on {name.partition(':')[0]}", "invalid")
    iterate = modifier in ("iterate", "recurse")
    if value == "*":
        inc = Include(None, None, None, iterate)
    else:
        parts = value.split(":")
        if len(parts) not in (2, 3) or not all(parts):
            raise InvalidSearchParameter(f"{name}={value}: expected SourceType:param[:TargetType]")
        source, code = parts[0], parts[1]
        _check_type(name, source)
        target = parts[2] if len(parts) == 3 else None
        if target is not None:
            _check_type(name, target)
        if code != "*":
            p = defs.params_for(source).get(code)
            if p is None or p.type != "reference":
                raise _Dropped(f"{name}={value}: '{code}' is not a reference parameter of {source}")
            if target and p.target and target not in p.target:
                raise _Dropped(f"{name}={value}: {source}.{code} never refers to {target}")
        inc = Include(source, None if code == "*" else code, target, iterate)
    key = "revincludes" if reverse else "includes"
    state.options.setdefault(key, [])
    state.options[key].append(inc)  # type: ignore[attr-defined]


def _sort(state: _State, name: str, value: str) -> None:
    params = _params(state.types, state.resource_type)
    keys = []
    for raw in value.split(","):
        desc = raw.startswith("-")
        code = raw[1:] if desc else raw
        if code in ("_id", "_lastUpdated"):
            keys.append(SortKey(code, "special", desc))
            continue
        p = params.get(code)
        if p is None or p.type in ("composite", "special"):
            raise _Dropped(f"_sort: '{code}' is not a sortable parameter of {state.resource_type or 'Resource'}")
        keys.append(SortKey(code, p.type, desc))
    state.options["sort"] = tuple(keys)


def _count(state: _State, name: str, value: str) -> str:
    if not value.isdigit():
        raise InvalidSearchParameter(f"_count must be a non-negative integer, not '{value}'")
    count = int(value)
    if count > state.max_count:
        state.warnings.append(Issue("warning", "informational",
                                    f"_count={count} exceeds the maximum; capped to {state.max_count}"))
        count = state.max_count
    state.options["count"] = count
    return str(count)


def _choice(allowed: frozenset[str], key: str) -> Callable[[_State, str, str], None]:
    def handle(state: _State, name: str, value: str) -> None:
        if value not in allowed:
            raise InvalidSearchParameter(f"{name} must be one of {', '.join(sorted(allowed))}, not '{value}'")
        state.options[key] = value

    return handle


def _elements(state: _State, name: str, value: str) -> None:
    state.options["elements"] = tuple(v.strip() for v in value.split(",") if v.strip())


def _cursor(state: _State, name: str, value: str) -> None:
    state.options["cursor"] = value


CONTROL: dict[str, Callable[[_State, str, str], object]] = {
    "_count": _count,
    "_sort": _sort,
    "_total": _choice(TOTAL, "total"),
    "_summary": _choice(SUMMARY, "summary"),
    "_elements": _elements,
    "_cursor": _cursor,
}


def _types(pairs: list[tuple[str, str]], resource_type: str | None) -> tuple[str, ...]:
    if resource_type is not None:
        _check_type("the request", resource_type)
        return ()
    types: list[str] = []
    for name, value in pairs:
        if name == "_type":
            for t in value.split(","):
                _check_type("_type", t)
                types.append(t)
    return tuple(dict.fromkeys(types))


def parse_search(resource_type: str | None, pairs: Iterable[tuple[str, str]], *, strict: bool = True,
                 default_count: int = DEFAULT_COUNT, max_count: int = MAX_COUNT) -> SearchQuery:
    """Parse URL-decoded (name, value) pairs for a type search (or a system search when type is None).

    Raises :class:`InvalidSearchParameter` for bad values, and in strict mode for unsupported parameters.
    ``default_count``/``max_count`` are the server's page-size settings.
    """
    pairs = list(pairs)
    state = _State(resource_type, strict, types=_types(pairs, resource_type), max_count=max_count)
    for name, value in pairs:
        try:
            honoured = _one(state, name, value)
        except _Dropped as exc:
            if strict:
                raise InvalidSearchParameter(exc.message, code=exc.code) from None
            state.warnings.append(Issue("warning", exc.code, exc.message + " (ignored)"))
            continue
        if honoured is not None:
            state.honoured.append((name, honoured))
    o = state.options
    return SearchQuery(
        resource_type=resource_type,
        filters=tuple(state.filters),
        types=state.types,
        includes=tuple(o.get("includes", ())),  # type: ignore[arg-type]
        revincludes=tuple(o.get("revincludes", ())),  # type: ignore[arg-type]
        sort=o.get("sort", ()),  # type: ignore[arg-type]
        count=o.get("count", min(default_count, max_count)),  # type: ignore[arg-type]
        cursor=o.get("cursor"),  # type: ignore[arg-type]
        total=o.get("total", "accurate"),  # type: ignore[arg-type]
        summary=o.get("summary"),  # type: ignore[arg-type]
        elements=o.get("elements", ()),  # type: ignore[arg-type]
        warnings=tuple(state.warnings),
        honoured=tuple(state.honoured),
    )


def _one(state: _State, name: str, value: str) -> str | None:
    """Apply one pair; returns the value to show in the self link (None: not shown)."""
    if name in IGNORED:
        return None
    if name == "_type":
        return value if state.resource_type is None else None
    if name.startswith("_include") or name.startswith("_revinclude"):
        if name.partition(":")[0] not in ("_include", "_revinclude"):
            raise _Dropped(f"Unknown search parameter '{name}'")
        _include(state, name, value)
        return value
    control = CONTROL.get(name)
    if control is not None:
        shown = control(state, name, value)
        return None if name == "_cursor" else shown if isinstance(shown, str) else value
    if name.startswith("_") and name.partition(":")[0] in CONTROL:
        raise _Dropped(f"Modifiers are not allowed on '{name.partition(':')[0]}'", "invalid")
    state.filters.append(_filter(state.resource_type, state.types, name, value))
    return value
