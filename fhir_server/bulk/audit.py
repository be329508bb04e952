"""The AuditEvents of bulk export (ACCESS.md §B "Audit"): one per job, one per file download.

Shaped as IHE BALP (``BasicAuditEvent`` of a query / an export): type DICOM 110106 "Export", action ``R``,
agent = the client (``who.identifier`` ``urn:ietf:params:oauth:client-id|<client_id>``, its Organization in
``agent.who``… see below) with ``purposeOfUse``; entity = the query (the kick-off URL, base64 in ``query`` as
BALP asks) and, for a Group export, the Group. Listing every patient of a 100k-resource export in one event
would make the event larger than the export's own files, so patients are not enumerated here.

A minimal builder kept in this package until the security engineer's shared ``security/audit.py`` (``balp_event``)
lands; then these two functions should call it.
"""

from __future__ import annotations

import base64
from typing import Any

from fhir_server.fhir import instant
from fhir_server.security.caller import Caller

DCM = "http://dicom.nema.org/resources/ontology/DCM"
BALP = "https://profiles.ihe.net/ITI/BALP/StructureDefinition/IHE.BasicAudit.Query"
PURPOSE = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
ENTITY_TYPE = "http://terminology.hl7.org/CodeSystem/audit-entity-type"
OBJECT_ROLE = "http://terminology.hl7.org/CodeSystem/object-role"
CLIENT_ID = "urn:ietf:params:oauth:client-id"


def _agent(caller: Caller) -> dict[str, Any]:
    agent: dict[str, Any] = {
        "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
                             "code": "IRCP", "display": "information recipient"}]},
        "who": {"identifier": {"system": CLIENT_ID, "value": caller.client_id}},
        "requestor": True,
    }
    if caller.organization:
        agent["extension"] = [{"url": "http://hl7.org/fhir/StructureDefinition/auditevent-OnBehalfOf",
                               "valueReference": {"reference": caller.organization}}]
    if caller.purpose:
        agent["purposeOfUse"] = [{"coding": [{"system": PURPOSE, "code": caller.purpose}]}]
    return agent


def export_event(caller: Caller, query: str, outcome: str, description: str,
                 group: str | None = None, file_url: str | None = None) -> dict[str, Any]:
    """``outcome``: ``0`` success, ``4`` refused, ``8`` failed (the server's fault)."""
    entities: list[dict[str, Any]] = [{
        "type": {"system": ENTITY_TYPE, "code": "2", "display": "System Object"},
        "role": {"system": OBJECT_ROLE, "code": "24", "display": "Query"},
        "query": base64.b64encode(query.encode()).decode(),
        "description": description,
    }]
    if group:
        entities.append({"what": {"reference": group},
                         "type": {"system": ENTITY_TYPE, "code": "2", "display": "System Object"}})
    if file_url:
        entities.append({"what": {"identifier": {"value": file_url}}, "description": "export file downloaded"})
    return {
        "resourceType": "AuditEvent",
        "meta": {"profile": [BALP]},
        "type": {"system": DCM, "code": "110106", "display": "Export"},
        "subtype": [{"system": "http://hl7.org/fhir/restful-interaction", "code": "operation",
                     "display": "operation"}],
        "action": "R",
        "recorded": instant.now(),
        "outcome": outcome,
        "agent": [_agent(caller)],
        "source": {"observer": {"display": "ASCMI FHIR server bulk export"}},
        "entity": entities,
    }
