"""The values the decision engine takes and gives: frozen dataclasses, no FHIR models, no I/O.

The HTTP layer gathers the facts (Patient, Consents, recipient Organizations and their network affiliations)
from the store, builds these values, and calls :func:`fhir_server.consent.decide.decide`. Keeping the inputs
plain data is what lets the whole rule book be tested as tables.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Literal

import orjson

Verdict = Literal["permit", "deny"]
Basis = Literal["consent", "legal-floor", "no-consent", "never"]
Regime = Literal["AB133", "NON-AB133"]

DEFAULT_CANONICAL_BASE = "https://ascmi.example.org/fhir"
DEFAULT_TIMEZONE = "America/Los_Angeles"
NETWORK_ORGANIZATION_ID = "ascmi-care-partner-network"


@dataclass(frozen=True, slots=True)
class Coding:
    """A FHIR Coding reduced to what decisions compare; ``system`` may be absent in loose client input."""

    system: str | None
    code: str
    display: str | None = None

    @property
    def key(self) -> tuple[str | None, str]:
        return (self.system, self.code)

    def to_json(self) -> dict[str, str]:
        out: dict[str, str] = {}
        if self.system:
            out["system"] = self.system
        out["code"] = self.code
        if self.display:
            out["display"] = self.display
        return out


@dataclass(frozen=True, slots=True)
class Identifier:
    system: str | None
    value: str

    def to_json(self) -> dict[str, str]:
        return {"system": self.system, "value": self.value} if self.system else {"value": self.value}


@dataclass(frozen=True, slots=True)
class DecisionRequest:
    """May ``recipient`` receive information labelled ``labels`` for ``purpose`` at ``time`` about
    ``patient``?

    ``time`` is a date (that calendar date), a naive datetime (read in the server's zone), an aware datetime,
    or None (now). An empty ``labels`` means general health.
    """

    patient: tuple[Identifier, ...]
    recipient: tuple[Identifier, ...]
    purpose: Coding
    labels: tuple[Coding, ...] = ()
    time: date | datetime | None = None


@dataclass(frozen=True, slots=True)
class Membership:
    """One OrganizationAffiliation of the recipient with a network, as dates inclusive of the whole day."""

    network_id: str = NETWORK_ORGANIZATION_ID
    start: date | None = None
    end: date | None = None
    active: bool = True


@dataclass(frozen=True, slots=True)
class RecipientFacts:
    """What the store knows about the recipient named by the request's identifiers.

    ``known`` is False when no Organization matched; such a recipient is not a covered entity and can only be
    matched by a Consent actor through the identifiers of the request. ``state`` None means California.
    """

    identifiers: tuple[Identifier, ...]
    known: bool = False
    organization_ids: tuple[str, ...] = ()
    covered_entity: bool = False
    type: str | None = None
    state: str | None = None
    memberships: tuple[Membership, ...] = ()

    @property
    def in_state(self) -> str:
        return (self.state or "CA").upper()


@dataclass(frozen=True, slots=True)
class ConsentVersion:
    """One stored Consent (its current version) as the engine sees it.

    ``recorded`` orders versions that were signed at the same moment: the larger one was recorded last
    (meta.lastUpdated as an ISO string in UTC, or a store sequence number).
    Build it with :meth:`from_resource` (a parsed dict) or, cheaper, :meth:`from_json` (the stored bytes plus
    the id and versionId the store already knows): then the JSON is parsed only when the compiled-Consent
    cache misses.
    """

    id: str
    version_id: str
    recorded: str | int = ""
    raw: bytes | None = field(default=None, compare=False, repr=False)
    parsed: dict[str, Any] | None = field(default=None, compare=False, repr=False)

    @property
    def resource(self) -> dict[str, Any]:
        if self.parsed is None:
            object.__setattr__(self, "parsed", orjson.loads(self.raw or b"{}"))
        assert self.parsed is not None
        return self.parsed

    def unparsed(self) -> ConsentVersion:
        """This version without its parsed JSON, when it has the bytes (else itself): what a cache keeps.

        The parsed dict of a Consent is several times the size of its bytes (a Python object per key and
        value); a cache of thousands of compiled Consents holding it grew a worker's memory by megabytes a
        minute under the mixed load."""
        if self.raw is None:
            return self
        return ConsentVersion(self.id, self.version_id, self.recorded, self.raw)

    def parse(self) -> dict[str, Any]:
        """The resource, parsed now if not already, without keeping the parse (see :meth:`unparsed`)."""
        return self.parsed if self.parsed is not None else orjson.loads(self.raw or b"{}")

    @classmethod
    def from_resource(cls, resource: dict[str, Any], recorded: str | int | None = None) -> ConsentVersion:
        meta = resource.get("meta") or {}
        return cls(
            id=str(resource.get("id", "")),
            version_id=str(meta.get("versionId", "1")),
            recorded=recorded if recorded is not None else str(meta.get("lastUpdated", "")),
            parsed=resource,
        )

    @classmethod
    def from_json(
        cls,
        raw: bytes,
        recorded: str | int | None = None,
        *,
        id: str | None = None,
        version_id: str | None = None,
    ) -> ConsentVersion:
        """From the bytes a store keeps; with ``id``, ``version_id`` and ``recorded`` given, nothing is parsed
        until the compiled form is needed (the cache is keyed by these bytes)."""
        if id is None or version_id is None or recorded is None:
            version = cls.from_resource(orjson.loads(raw), recorded)
            return cls(version.id, version.version_id, version.recorded, raw, version.parsed)
        return cls(id, version_id, recorded, raw)

    @property
    def reference(self) -> str:
        return f"Consent/{self.id}/_history/{self.version_id}"


@dataclass(frozen=True, slots=True)
class DecisionSettings:
    canonical_base: str = DEFAULT_CANONICAL_BASE
    timezone: str = DEFAULT_TIMEZONE
    honor_do_not_share_on_floor: bool = True


@dataclass(frozen=True, slots=True)
class Reason:
    """One human-readable step of the decision, with what it rests on.

    ``rule`` is the number of the rule in ASCMI.md §4; ``consent`` a versioned
    ``Consent/<id>/_history/<vid>``;
    ``provision`` the index in ``Consent.provision.provision``; ``floor_row`` the id of a legal-floor row.
    """

    rule: int
    text: str
    category: str | None = None
    consent: str | None = None
    provision: int | None = None
    floor_row: str | None = None


@dataclass(frozen=True, slots=True)
class CategoryDecision:
    category: str
    decision: Verdict
    basis: Basis
    explicit_deny: bool = False
    reasons: tuple[Reason, ...] = ()


@dataclass(frozen=True, slots=True)
class LabelDecision:
    label: Coding
    category: str | None  # None for a label that is never shareable (PSYTHPN)
    decision: Verdict
    basis: Basis


@dataclass(frozen=True, slots=True)
class Decision:
    decision: Verdict
    basis: Basis
    consent_on_file: bool
    consent: ConsentVersion | None
    date: date
    regime: Regime
    label_decisions: tuple[LabelDecision, ...]
    categories: tuple[CategoryDecision, ...]
    reasons: tuple[Reason, ...]
    obligations: tuple[Coding, ...] = field(default=())

    @property
    def permitted_labels(self) -> tuple[Coding, ...]:
        return tuple(ld.label for ld in self.label_decisions if ld.decision == "permit")

    @property
    def denied_labels(self) -> tuple[Coding, ...]:
        return tuple(ld.label for ld in self.label_decisions if ld.decision == "deny")
