"""Rule 4: what the governing Consent says about one category, for this recipient and purpose at T.

A nested provision matches when
- its actor is empty or names R: ``Organization/<id>`` of R, one of R's identifiers, or a network
  (``Organization/ascmi-care-partner-network`` or the network identifier) R belongs to at T;
- its purpose is empty or includes P;
- its securityLabel is empty or intersects the category's *own* labels (§5), so a substance-use "do not share"
  never decides a Part 2 request and vice versa.
Any matching ``deny`` wins (named exclusions and "do not share" override permits); else a matching ``permit``
(rule 5: for a minor's category, only one the minor signed); else the root type (deny).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from fhir_server.consent.clock import within
from fhir_server.consent.compiled import CompiledConsent, CompiledProvision
from fhir_server.consent.model import RecipientFacts, Verdict
from fhir_server.consent.tables import LabelKey


@dataclass(frozen=True, slots=True)
class Evaluation:
    decision: Verdict
    deny: CompiledProvision | None = None  # the first matching nested deny
    permit: CompiledProvision | None = None  # the matching permit that decided
    unsigned_permit: CompiledProvision | None = None  # a permit that matched but lacked the minor's signature

    @property
    def explicit_deny(self) -> bool:
        return self.deny is not None


@dataclass(frozen=True, slots=True)
class Party:
    """The recipient as provision actors see it at T: its references, identifiers and networks that day."""

    refs: frozenset[str]
    identifiers: frozenset[LabelKey]

    @classmethod
    def of(cls, recipient: RecipientFacts, day: date) -> Party:
        refs = {f"Organization/{oid}" for oid in recipient.organization_ids}
        refs |= {
            f"Organization/{m.network_id}"
            for m in recipient.memberships
            if m.active and within(day, m.start, m.end)
        }
        idents = {(i.system, i.value) for i in recipient.identifiers}
        return cls(frozenset(refs), frozenset(idents))


def _matches(p: CompiledProvision, party: Party, purpose: str) -> bool:
    """Actor and purpose; the label test was done once when the Consent was compiled (``by_category``)."""
    if (
        p.has_actor
        and p.actor_refs.isdisjoint(party.refs)
        and p.actor_identifiers.isdisjoint(party.identifiers)
    ):
        return False
    return not p.purposes or purpose in p.purposes


def evaluate(
    consent: CompiledConsent,
    category: str,
    purpose: str,
    party: Party,
    minor_signature_required: bool,
) -> Evaluation:
    permit: CompiledProvision | None = None
    unsigned: CompiledProvision | None = None
    for p in consent.by_category.get(category, ()):
        if not _matches(p, party, purpose):
            continue
        if p.type == "deny":
            return Evaluation("deny", deny=p)
        if minor_signature_required and not p.minor_signed:
            unsigned = unsigned or p
        elif permit is None:
            permit = p
    if permit is not None:
        return Evaluation("permit", permit=permit)
    return Evaluation(consent.root_type, unsigned_permit=unsigned)
