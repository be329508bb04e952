"""The ASCMI consent decision engine: pure rules (ASCMI.md §4–§5) over facts the HTTP layer gathers.

Entry points: :func:`decide`, :func:`parse_parameters` / :func:`to_parameters` (``Consent/$decide``),
:mod:`cds` (``patient-consent-consult``), :func:`to_audit_event` (rule 8), :func:`recipient_facts`.
"""

from __future__ import annotations

from fhir_server.consent.audit import to_audit_event
from fhir_server.consent.cds import discovery, parse_cds_request, to_cds_response
from fhir_server.consent.decide import decide
from fhir_server.consent.model import (
    Coding,
    ConsentVersion,
    Decision,
    DecisionRequest,
    DecisionSettings,
    Identifier,
    Membership,
    RecipientFacts,
)
from fhir_server.consent.parameters import parse_parameters, to_parameters
from fhir_server.consent.recipient import recipient_facts

__all__ = [
    "Coding",
    "ConsentVersion",
    "Decision",
    "DecisionRequest",
    "DecisionSettings",
    "Identifier",
    "Membership",
    "RecipientFacts",
    "decide",
    "discovery",
    "parse_cds_request",
    "parse_parameters",
    "recipient_facts",
    "to_audit_event",
    "to_cds_response",
    "to_parameters",
]
