"""A Consent reduced once to what rules 2, 4 and 5 compare (ASCMI.md §3, §5).

Reading the Consent JSON on every decision would repeat the same walks over codings and references, so each
stored Consent version is compiled to frozen sets (actors, purposes, labels), with its nested provisions
pre-sorted by the category they can speak to, and cached: a stored version never changes.

What is read (the ``ASCMIConsent`` shape):
- ``status``, ``dateTime`` (signed date), ``policyRule``/``category`` ``ascmi-form#<type>``;
- root ``provision``: ``type`` (deny), ``period`` (start…end; start falls back to ``dateTime``),
  the ``ascmi-expiration-event`` extension;
- nested ``provision.provision[i]``: ``type``, ``actor[].reference`` (``Organization/<id>``, absolute or
  versioned, or an ``identifier``), ``purpose[]``, ``securityLabel[]`` and the minor-signature extension
  (``[base]/StructureDefinition/ascmi-minor-signature``, valueDate: the minor signed for this permit).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Any, TypeVar

from fhir_server.consent.clock import local_date, sort_instant
from fhir_server.consent.model import ConsentVersion, Verdict
from fhir_server.consent.tables import LabelKey, Tables

# Least-recently-used: a stored version never changes, so entries are only ever evicted, never stale.
T = TypeVar("T")
_CACHE: OrderedDict[tuple[str, str, str, str, str], CompiledConsent] = OrderedDict()
_BYTES_CACHE: OrderedDict[tuple[str, str, bytes], CompiledConsent] = OrderedDict()
_DESCRIPTIONS: dict[CompiledProvision, str] = {}  # provisions are few and repeat across versions
# ~6.5 KB per entry (an ASCMI Consent's bytes, ~5 KB, and ~1 KB of its own: the provisions are shared, below),
# so 256 entries stay under ~2 MB per worker (before: the parsed JSON and unshared provisions, ~40 KB each,
# 4,096 entries; then 1,024, which the mixed soak filled only after 4-7 minutes, growing each worker by ~7 MB
# after warm-up; docs/deploy.md, *Memory per worker*). A miss costs one parse and compile (~0.5 ms), and the
# gate's decision cache answers before this one is asked.
_CACHE_LIMIT = 256
# Equal provisions and per-category maps, one object each: ASCMI forms repeat the same provisions (a category
# shared or not, with the same recipients), so thousands of cached Consents hold a few hundred distinct ones.
# Emptied when full: entries of evicted Consents linger until then, so the bound is what can linger; 1,024 is
# four per cached Consent and fills within the soak's warm-up (at 16,384 it grew a worker for the whole soak).
_SHARED: dict[Any, Any] = {}
_SHARED_LIMIT = 1_024


@dataclass(frozen=True, slots=True)
class CompiledProvision:
    index: int
    type: Verdict
    actor_refs: frozenset[str]  # "Organization/<id>"
    actor_identifiers: frozenset[LabelKey]
    purposes: frozenset[str]  # purpose codes; empty = any purpose
    label_keys: frozenset[LabelKey]  # empty = any label
    minor_signed: bool

    @property
    def has_actor(self) -> bool:
        return bool(self.actor_refs or self.actor_identifiers)

    def describe(self) -> str:
        """``deny all information to Organization/x`` — the words a privacy officer reads in a reason."""
        text = _DESCRIPTIONS.get(self)
        if text is None:
            if len(_DESCRIPTIONS) >= _CACHE_LIMIT:
                _DESCRIPTIONS.clear()
            text = _DESCRIPTIONS[self] = self._describe()
        return text

    def _describe(self) -> str:
        who = ", ".join(
            sorted(self.actor_refs) + [f"{s}|{v}" for s, v in sorted(self.actor_identifiers, key=str)]
        )
        what = ", ".join(sorted(code for _, code in self.label_keys)) or "all information"
        text = f"{self.type} {what} to {who or 'anyone'}"
        return text + (" for " + ", ".join(sorted(self.purposes)) if self.purposes else "")


@dataclass(frozen=True, slots=True)
class CompiledConsent:
    """A Consent's header (what rule 2 needs to pick the governing one), compiled eagerly, and its
    provisions, compiled on first use: of a patient's several Consents only the governing one is evaluated."""

    version: ConsentVersion
    status: str
    form_type: str | None  # AB133 | NON-AB133 | REVOCATION | None (not an ASCMI Consent)
    signed_text: str | None
    signed_key: tuple[date, str]
    start: date | None
    end: date | None
    root_type: Verdict
    expiration_event: str | None
    tables: Tables = field(compare=False, repr=False)
    _lazy: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def reference(self) -> str:
        return self.version.reference

    @property
    def provisions(self) -> tuple[CompiledProvision, ...]:
        found = self._lazy.get("provisions")
        if found is None:
            root = self.version.parse().get("provision") or {}  # cached versions keep bytes, not the parse
            found = self._lazy["provisions"] = _shared(tuple(
                _shared(_provision(i, p, self.tables)) for i, p in enumerate(root.get("provision") or [])))
        return found  # type: ignore[no-any-return]

    @property
    def by_category(self) -> dict[str, tuple[CompiledProvision, ...]]:
        """Per category, the provisions whose labels are empty or intersect the category's own labels."""
        found = self._lazy.get("by_category")
        if found is None:
            provisions = self.provisions
            key = ("by_category", self.tables.base, provisions)
            found = _SHARED.get(key)
            if found is None:
                found = _shared_as(key, {
                    code: _shared(tuple(p for p in provisions
                                        if not p.label_keys or not p.label_keys.isdisjoint(cat.label_keys)))
                    for code, cat in self.tables.categories.items()
                })
            self._lazy["by_category"] = found
        return found  # type: ignore[no-any-return]


def _shared(value: T) -> T:
    """The one object equal to ``value`` (read-only values only: every holder sees the same object)."""
    return _shared_as(value, value)


def _shared_as(key: Any, value: T) -> T:
    found = _SHARED.get(key)
    if found is None:
        if len(_SHARED) >= _SHARED_LIMIT:
            _SHARED.clear()
        found = _SHARED[key] = value
    return found  # type: ignore[no-any-return]


def ref_key(reference: str) -> str | None:
    """``https://h/fhir/Organization/1/_history/2`` → ``Organization/1``."""
    parts = [p for p in reference.split("/") if p]
    if "_history" in parts:
        parts = parts[: parts.index("_history")]
    return "/".join(parts[-2:]) if len(parts) >= 2 else None


def _codings(concept: Any) -> list[dict[str, Any]]:
    return list(concept.get("coding") or []) if isinstance(concept, dict) else []


def _form_type(resource: dict[str, Any], tables: Tables) -> str | None:
    concepts = [resource.get("policyRule")] + list(resource.get("category") or [])
    for concept in concepts:
        for c in _codings(concept):
            if c.get("system") == tables.form_system and c.get("code"):
                return None if c["code"] in tables.non_sharing_forms else str(c["code"])
    return None


def _provision(index: int, raw: dict[str, Any], tables: Tables) -> CompiledProvision:
    refs: set[str] = set()
    idents: set[LabelKey] = set()
    network_ident = tables.network_identifier
    for actor in raw.get("actor") or []:
        ref = actor.get("reference") or {}
        if ref.get("reference"):
            key = ref_key(str(ref["reference"]))
            if key:
                refs.add(key)
        ident = ref.get("identifier") or {}
        if ident.get("value"):
            pair = (ident.get("system"), str(ident["value"]))
            if pair == network_ident:
                refs.add(f"Organization/{tables.network_id}")
            else:
                idents.add(pair)
    purposes: set[str] = set()
    for p in raw.get("purpose") or []:
        code = tables.purpose_of((p.get("system"), str(p.get("code", ""))))
        # An unknown purpose still narrows the provision: it matches nothing we can be asked about.
        purposes.add(code if code else f"unknown:{p.get('system')}|{p.get('code')}")
    labels = frozenset(
        (lab.get("system"), str(lab.get("code", ""))) for lab in raw.get("securityLabel") or []
    )
    minor = any(e.get("url") == tables.minor_signature_extension for e in raw.get("extension") or [])
    kind: Verdict = "permit" if raw.get("type") == "permit" else "deny"
    return CompiledProvision(
        index, kind, frozenset(refs), frozenset(idents), frozenset(purposes), labels, minor
    )


def compile_consent(version: ConsentVersion, tables: Tables, tz: str) -> CompiledConsent:
    """Uncached compilation; :func:`compiled` is the cached entry point."""
    res = version.resource
    root = res.get("provision") or {}
    period = root.get("period") or {}
    event = next(
        (
            e.get("valueCode")
            for e in root.get("extension") or []
            if e.get("url") == tables.expiration_event_extension
        ),
        None,
    )
    signed = res.get("dateTime")
    return CompiledConsent(
        version=version,
        status=str(res.get("status", "")),
        form_type=_form_type(res, tables),
        signed_text=signed,
        signed_key=sort_instant(signed, tz),
        start=local_date(period.get("start"), tz) or local_date(signed, tz),
        end=local_date(period.get("end"), tz),
        root_type="permit" if root.get("type") == "permit" else "deny",
        expiration_event=event,
        tables=tables,
    )


def compiled(version: ConsentVersion, tables: Tables, tz: str) -> CompiledConsent:
    """The compiled form of a Consent version, cached.

    Versions built with :meth:`ConsentVersion.from_json` are cached by their exact bytes (a hash and a
    memcmp). Others are cached by id, version and recorded order, and a hit is checked against the cached
    content (identity, else dict equality — ~30 µs for a large Consent), so a reused id with other content
    (fresh test databases, a store that restarts its counters) recompiles instead of lying.
    """
    if version.raw is not None:
        by_bytes = (tables.base, tz, version.raw)
        hit = _BYTES_CACHE.get(by_bytes)
        if hit is None or hit.version.recorded != version.recorded:
            hit = _BYTES_CACHE[by_bytes] = replace(compile_consent(version, tables, tz), version=version.unparsed())
            if len(_BYTES_CACHE) > _CACHE_LIMIT:
                _BYTES_CACHE.popitem(last=False)
        else:
            _BYTES_CACHE.move_to_end(by_bytes)
        return hit
    key = (tables.base, tz, version.id, version.version_id, str(version.recorded))
    hit = _CACHE.get(key)
    if hit is not None and (
        hit.version.resource is version.resource or hit.version.resource == version.resource
    ):
        _CACHE.move_to_end(key)
        return hit
    hit = _CACHE[key] = compile_consent(version, tables, tz)
    if len(_CACHE) > _CACHE_LIMIT:
        _CACHE.popitem(last=False)
    return hit
