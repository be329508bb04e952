"""The accounting of disclosures: one IHE BALP AuditEvent per response that returns patient data (ACCESS.md §B).

Shape (BALP ``PatientRead`` / ``PatientQuery``): ``type`` audit-event-type ``rest``, ``subtype`` the FHIR
interaction, ``action`` ``R`` (read, vread) or ``E`` (search, history, operation), ``outcome`` ``0``; agents = the
client (``who.identifier`` ``urn:ietf:params:oauth:client-id|<client_id>``, requestor, ``purposeOfUse``) and its
Organization (information recipient); entities = the query (base64 in ``query``, as BALP asks) and one per patient
whose data went out (role Patient) carrying the §2 labels disclosed in ``securityLabel`` (``N`` for general
health) and, in ``detail``, each ASCMI category and each basis (``consent Consent/<id>/_history/<vid>``,
``legal-floor``, ``consent-record``) — what ``fhir-server ascmi disclosures`` reports in plain language.

Events are written behind the answer by the write-behind writer (group commits), as decision audits are.
The local administrator of ``FHIR_AUTH=off`` (and the server's own work) is not a client and is not audited.

The security engineer's shared BALP builder (``security/audit.py``) had not landed when this was written; when it
does, :func:`disclosure_event` should build on it.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import Any

from fhir_server.consent.compartment import compartment_params, patients_of
from fhir_server.consent.gate import Gate
from fhir_server.consent.model import Coding
from fhir_server.consent.tables import load_tables
from fhir_server.fhir import instant, jsonio
from fhir_server.repository.writebehind import WriteBehind
from fhir_server.security.caller import ADMINISTRATOR, Caller
from fhir_server.store.base import ResourceVersion

BALP_READ = "https://profiles.ihe.net/ITI/BALP/StructureDefinition/IHE.BasicAudit.PatientRead"
BALP_QUERY = "https://profiles.ihe.net/ITI/BALP/StructureDefinition/IHE.BasicAudit.PatientQuery"
EVENT_TYPE = "http://terminology.hl7.org/CodeSystem/audit-event-type"
INTERACTION = "http://hl7.org/fhir/restful-interaction"
ENTITY_TYPE = "http://terminology.hl7.org/CodeSystem/audit-entity-type"
OBJECT_ROLE = "http://terminology.hl7.org/CodeSystem/object-role"
PARTICIPATION = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
PURPOSE = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
CLIENT_ID = "urn:ietf:params:oauth:client-id"
OBSERVER = "ASCMI FHIR server (disclosure)"
CONFIDENTIALITY = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"


class _Patient:
    def __init__(self) -> None:
        self.labels: list[Coding] = []
        self.categories: list[str] = []
        self.bases: list[str] = []
        self.resources = 0


def _labels_of(resource: dict[str, Any], canonical_base: str) -> list[Coding]:
    tables = load_tables(canonical_base)
    out = []
    for c in (resource.get("meta") or {}).get("security") or []:
        key = (c.get("system"), c.get("code"))
        if isinstance(c, dict) and isinstance(key[1], str) and tables.category_of_label(key) is not None:
            out.append(Coding(key[0], key[1]))
    return out


def _collect(gate: Gate, caller: Caller, versions: Sequence[ResourceVersion]) -> dict[str, _Patient]:
    tables = gate.tables
    people: dict[str, _Patient] = {}
    for v in versions:
        if v.body is None or not compartment_params(v.resource_type) and v.resource_type != "Patient":
            continue
        bases: tuple[str, ...] = ()
        if caller.is_administrator:
            body = jsonio.loads(v.body)
            patients, labels = patients_of(body), _labels_of(body, gate.settings.canonical_base)
        else:
            why = gate.disclosure(caller, v)
            if why is None:
                continue
            patients, labels, bases = why.patients, list(why.labels), why.bases
        categories = [tables.category_of_label(lab.key) or tables.default_category for lab in labels] or \
            [tables.default_category]
        for i, pid in enumerate(patients):
            p = people.setdefault(pid, _Patient())
            p.resources += 1
            p.labels += [lab for lab in labels if lab not in p.labels]
            p.categories += [c for c in categories if c not in p.categories]
            if i < len(bases) and bases[i] not in p.bases:
                p.bases.append(bases[i])
    return people


def disclosure_event(caller: Caller, *, interaction: str, query: str, people: dict[str, Any],
                     outcome: str = "0") -> dict[str, Any]:
    """The BALP AuditEvent of one response (``people``: patient id → what went out about them)."""
    read = interaction in ("read", "vread")
    client: dict[str, Any] = {
        "type": {"coding": [{"system": "http://dicom.nema.org/resources/ontology/DCM", "code": "110153",
                             "display": "Source Role ID"}]},
        "who": {"identifier": {"system": CLIENT_ID, "value": caller.client_id}},
        "requestor": True,
    }
    if caller.purpose:
        client["purposeOfUse"] = [{"coding": [{"system": PURPOSE, "code": caller.purpose}]}]
    agents = [client]
    if caller.organization:
        agents.append({"type": {"coding": [{"system": PARTICIPATION, "code": "IRCP",
                                             "display": "information recipient"}]},
                       "who": {"reference": caller.organization}, "requestor": False})
    entities: list[dict[str, Any]] = [{
        "type": {"system": ENTITY_TYPE, "code": "2", "display": "System Object"},
        "role": {"system": OBJECT_ROLE, "code": "24", "display": "Query"},
        "query": base64.b64encode(query.encode()).decode(),
        "description": query,
    }]
    for pid, p in people.items():
        labels = [lab.to_json() for lab in p.labels] or [{"system": CONFIDENTIALITY, "code": "N"}]
        entities.append({
            "what": {"reference": f"Patient/{pid}"},
            "type": {"system": ENTITY_TYPE, "code": "1", "display": "Person"},
            "role": {"system": OBJECT_ROLE, "code": "1", "display": "Patient"},
            "securityLabel": labels,
            "description": f"{p.resources} resource(s) disclosed",
            "detail": [{"type": "category", "valueString": c} for c in p.categories]
            + [{"type": "basis", "valueString": b} for b in p.bases],
        })
    return {
        "resourceType": "AuditEvent",
        "meta": {"profile": [BALP_READ if read else BALP_QUERY]},
        "type": {"system": EVENT_TYPE, "code": "rest", "display": "Restful Operation"},
        "subtype": [{"system": INTERACTION, "code": interaction}],
        "action": "R" if read else "E",
        "recorded": instant.now(),
        "outcome": outcome,
        "agent": agents,
        "source": {"observer": {"display": OBSERVER}},
        "entity": entities,
    }


def record(audit: WriteBehind | None, gate: Gate, caller: Caller, interaction: str, query: str,
           versions: Sequence[ResourceVersion]) -> None:
    """Queue the disclosure AuditEvent of a response, when it returned patient data to a client."""
    if audit is None or caller == ADMINISTRATOR:
        return
    people = _collect(gate, caller, versions)
    if people:
        audit.submit(disclosure_event(caller, interaction=interaction, query=query, people=people))
