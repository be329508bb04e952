"""Recipient facts from stored resources: the Organization(s) a request's identifiers name, and their
OrganizationAffiliations with a network. Pure — the HTTP layer searches, this reads.

Read (ASCMI.md §3, §5): ``Organization.type`` from ``care-partner-type``; the ``covered-entity`` extension
(valueBoolean); ``address.state`` (absent = CA); ``OrganizationAffiliation`` with ``organization`` = the
network, ``participatingOrganization`` = the recipient, ``period`` and ``active`` (a member at T when any
affiliation is active and its period contains T).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fhir_server.consent.clock import local_date
from fhir_server.consent.compiled import ref_key
from fhir_server.consent.model import (
    DEFAULT_CANONICAL_BASE,
    DEFAULT_TIMEZONE,
    Identifier,
    Membership,
    RecipientFacts,
)
from fhir_server.consent.tables import load_tables
from fhir_server.fhir.outcome import BadRequest


def recipient_facts(
    requested: Sequence[Identifier],
    organizations: Sequence[dict[str, Any]],
    affiliations: Sequence[dict[str, Any]] = (),
    canonical_base: str = DEFAULT_CANONICAL_BASE,
    tz: str = DEFAULT_TIMEZONE,
) -> RecipientFacts:
    """Facts about the party the ``requested`` identifiers name.

    ``organizations``: the Organizations found by those identifiers (none = unknown recipient);
    ``affiliations``: OrganizationAffiliations whose participatingOrganization is one of them.
    Raises :class:`BadRequest` when the identifiers name two different Organizations.
    """
    tables = load_tables(canonical_base)
    ids = list(dict.fromkeys(str(o.get("id")) for o in organizations if o.get("id")))
    if len(ids) > 1:
        raise BadRequest(
            f"the recipient identifiers name {len(ids)} different Organizations ({', '.join(ids)})",
            ("recipient",),
        )
    idents = dict.fromkeys(requested)
    covered = False
    kind: str | None = None
    state: str | None = None
    for org in organizations:
        for ident in org.get("identifier") or []:
            if ident.get("value"):
                idents.setdefault(Identifier(ident.get("system"), str(ident["value"])))
        for ext in org.get("extension") or []:
            if ext.get("url") == tables.covered_entity_extension and ext.get("valueBoolean") is True:
                covered = True
        for concept in org.get("type") or []:
            for c in concept.get("coding") or []:
                if c.get("system") == tables.care_partner_type_system and kind is None:
                    kind = c.get("code")
        for addr in org.get("address") or []:
            if addr.get("state") and state is None:
                state = str(addr["state"]).upper()
    members = []
    own = {f"Organization/{i}" for i in ids}
    for aff in affiliations:
        participant = ref_key(str((aff.get("participatingOrganization") or {}).get("reference", "")))
        network = ref_key(str((aff.get("organization") or {}).get("reference", "")))
        if participant not in own or not network:
            continue
        period = aff.get("period") or {}
        members.append(
            Membership(
                network.split("/")[-1],
                local_date(period.get("start"), tz),
                local_date(period.get("end"), tz),
                aff.get("active", True) is not False,
            )
        )
    return RecipientFacts(
        identifiers=tuple(idents),
        known=bool(ids),
        organization_ids=tuple(ids),
        covered_entity=covered,
        type=kind,
        state=state,
        memberships=tuple(members),
    )
