"""AuditEvents shaped as IHE Basic Audit Log Patterns (BALP) RESTful events, for refused requests and for
disclosures (ACCESS.md §B "Audit").

One builder, :func:`balp_event`, used by the authentication edge (every 401/403, outcome ``4``) and by the
consent gate for what it discloses (outcome ``0``). Agents: the client (``who.identifier`` =
``urn:ietf:params:oauth:client-id|<client_id>``, requestor, with ``purposeOfUse``), the Care Partner
Organization it acts for, and this server. Entities: each patient (role Patient), each resource touched (role
Domain Resource) and the query (role Query, the request line base64-encoded in ``query`` as BALP asks).
``AuditEvent?patient=Patient/<id>`` then lists a person's disclosures and refusals.

A person signed in through the web page is one more agent, the requestor (type ``humanuser``, ``who.identifier``
= ``<canonical base>/sid/username|<username>``); the page's client is then not the requestor. Sign-ins, failed
or not, are DICOM "User Authentication" events (:func:`login_event`); no password is ever part of one.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from fhir_server.security.caller import Caller

BALP = "https://profiles.ihe.net/ITI/BALP/StructureDefinition"
DCM = "http://dicom.nema.org/resources/ontology/DCM"
EVENT_TYPE = "http://terminology.hl7.org/CodeSystem/audit-event-type"
INTERACTION = "http://hl7.org/fhir/restful-interaction"
ENTITY_TYPE = "http://terminology.hl7.org/CodeSystem/audit-entity-type"
OBJECT_ROLE = "http://terminology.hl7.org/CodeSystem/object-role"
PARTICIPATION = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
SOURCE_TYPE = "http://terminology.hl7.org/CodeSystem/security-source-type"
ACT_REASON = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
CLIENT_ID_SYSTEM = "urn:ietf:params:oauth:client-id"
V3_PURPOSES = frozenset({"TREAT", "COC", "CAREMGT", "HPAYMT", "HOPERAT"})
SECURITY_ROLE = "http://terminology.hl7.org/CodeSystem/extra-security-role-type"
OUTCOME_SUCCESS = "0"
OUTCOME_REFUSED = "4"

# interaction → (restful-interaction code, action, BALP profile stem or None)
_INTERACTIONS: dict[str, tuple[str, str, str | None]] = {
    "create": ("create", "C", "Create"),
    "read": ("read", "R", "Read"),
    "vread": ("vread", "R", "Read"),
    "history": ("history", "R", "Read"),
    "update": ("update", "U", "Update"),
    "patch": ("patch", "U", "Update"),
    "delete": ("delete", "D", "Delete"),
    "search": ("search-type", "E", "Query"),
    "search-system": ("search-system", "E", "Query"),
    "transaction": ("transaction", "E", None),
    "batch": ("batch", "E", None),
    "operation": ("operation", "E", None),
    "export": ("operation", "E", None),
}


def purpose_coding(code: str, canonical_base: str) -> dict[str, str]:
    """``TREAT`` → v3-ActReason; a local ascmi-purpose code (``social-services``) → the local system."""
    if code in V3_PURPOSES:
        return {"system": ACT_REASON, "code": code}
    return {"system": f"{canonical_base}/CodeSystem/ascmi-purpose", "code": code}


def balp_event(
    caller: Caller | None,
    *,
    interaction: str,
    outcome: str,
    patients: Iterable[str],
    query: str | None,
    base_url: str,
    resources: Iterable[str] = (),
    description: str | None = None,
    recorded: datetime | None = None,
    canonical_base: str = "https://ascmi.example.org/fhir",
) -> dict[str, Any]:
    """One BALP RESTful AuditEvent.

    ``caller`` is None when the request was not authenticated (a 401); ``interaction`` is a FHIR RESTful
    interaction (``read``, ``search``, ``create`` …, or ``operation``/``export``); ``outcome`` ``"0"`` success,
    ``"4"`` refused; ``patients`` and ``resources`` are relative references (``Patient/1``); ``query`` is the
    request as sent (``GET /fhir/Observation?patient=1``); ``description`` becomes ``outcomeDesc``.
    """
    code, action, stem = _INTERACTIONS.get(interaction, ("operation", "E", None))
    patient_refs = list(dict.fromkeys(patients))
    when = (recorded or datetime.now(UTC)).isoformat(timespec="milliseconds")
    purpose = [{"coding": [purpose_coding(caller.purpose, canonical_base)]}] if caller and caller.purpose else []
    event: dict[str, Any] = {"resourceType": "AuditEvent"}
    if stem is not None:
        event["meta"] = {"profile": [f"{BALP}/IHE.BasicAudit.{'Patient' if patient_refs else ''}{stem}"]}
    event |= {
        "type": {"system": EVENT_TYPE, "code": "rest", "display": "Restful Operation"},
        "subtype": [{"system": INTERACTION, "code": code}],
        "action": action,
        "recorded": when,
        "outcome": outcome,
    }
    if description:
        event["outcomeDesc"] = description
    if purpose:
        event["purposeOfEvent"] = purpose
    event["agent"] = _agents(caller, purpose, base_url, canonical_base)
    event["source"] = {"observer": {"display": f"ASCMI FHIR server {base_url}"},
                       "type": [{"system": SOURCE_TYPE, "code": "4", "display": "Application Server"}]}
    entities = [_entity(ref, "1", "Person", "1", "Patient") for ref in patient_refs]
    entities += [_entity(ref, "2", "System Object", "4", "Domain Resource")
                 for ref in dict.fromkeys(resources) if ref not in patient_refs]
    if query:
        entities.append({
            "type": {"system": ENTITY_TYPE, "code": "2", "display": "System Object"},
            "role": {"system": OBJECT_ROLE, "code": "24", "display": "Query"},
            "description": query[:2000],
            "query": base64.b64encode(query.encode()).decode("ascii"),
        })
    if entities:
        event["entity"] = entities
    return event


def user_system(canonical_base: str) -> str:
    """The identifier system of usernames in AuditEvents (the gate reads it to show people their own events)."""
    return f"{canonical_base}/sid/username"


def user_agent(username: str, display: str | None, canonical_base: str) -> dict[str, Any]:
    who: dict[str, Any] = {"identifier": {"system": user_system(canonical_base), "value": username}}
    if display:
        who["display"] = display
    return {"type": {"coding": [{"system": SECURITY_ROLE, "code": "humanuser", "display": "human user"}]},
            "who": who, "requestor": True}


def _agents(caller: Caller | None, purpose: list[dict[str, Any]], base_url: str,
            canonical_base: str) -> list[dict[str, Any]]:
    client: dict[str, Any] = {
        "type": {"coding": [{"system": DCM, "code": "110153", "display": "Source Role ID"}]},
        "requestor": caller is None or caller.user is None,
    }
    if caller is None:
        client["who"] = {"display": "unauthenticated caller"}
    else:
        client["who"] = {"identifier": {"system": CLIENT_ID_SYSTEM, "value": caller.client_id}}
        if purpose:
            client["purposeOfUse"] = purpose
    agents = [client]
    if caller is not None and caller.user is not None:
        person = user_agent(caller.user, None, canonical_base)
        if purpose:
            person["purposeOfUse"] = purpose
        agents.insert(0, person)
    if caller is not None and caller.organization:
        org: dict[str, Any] = {
            "type": {"coding": [{"system": PARTICIPATION, "code": "IRCP", "display": "information recipient"}]},
            "who": {"reference": caller.organization},
            "requestor": False,
        }
        if purpose:
            org["purposeOfUse"] = purpose
        agents.append(org)
    agents.append({
        "type": {"coding": [{"system": DCM, "code": "110152", "display": "Destination Role ID"}]},
        "who": {"display": f"ASCMI FHIR server {base_url}"},
        "requestor": False,
    })
    return agents


def _entity(reference: str, type_code: str, type_display: str, role: str, role_display: str) -> dict[str, Any]:
    return {
        "what": {"reference": reference},
        "type": {"system": ENTITY_TYPE, "code": type_code, "display": type_display},
        "role": {"system": OBJECT_ROLE, "code": role, "display": role_display},
    }


def login_event(
    username: str,
    *,
    success: bool,
    organization: str | None,
    client_id: str,
    base_url: str,
    description: str,
    canonical_base: str,
    logout: bool = False,
) -> dict[str, Any]:
    """A sign-in to the web page as an AuditEvent: DICOM 110114 "User Authentication" / 110122 "Login" (110123
    "Logout" for a sign-out), outcome ``0`` or ``4``. ``username`` is what was typed (normalised), known or not;
    the password never appears."""
    agents = [user_agent(username, None, canonical_base),
              {"type": {"coding": [{"system": DCM, "code": "110150", "display": "Application"}]},
               "who": {"identifier": {"system": CLIENT_ID_SYSTEM, "value": client_id}}, "requestor": False}]
    if organization:
        agents.append({"type": {"coding": [{"system": PARTICIPATION, "code": "IRCP",
                                            "display": "information recipient"}]},
                       "who": {"reference": organization}, "requestor": False})
    agents.append({"type": {"coding": [{"system": DCM, "code": "110152", "display": "Destination Role ID"}]},
                   "who": {"display": f"ASCMI FHIR server {base_url}"}, "requestor": False})
    return {
        "resourceType": "AuditEvent",
        "type": {"system": DCM, "code": "110114", "display": "User Authentication"},
        "subtype": [{"system": DCM, "code": "110123", "display": "Logout"} if logout
                    else {"system": DCM, "code": "110122", "display": "Login"}],
        "action": "E",
        "recorded": datetime.now(UTC).isoformat(timespec="milliseconds"),
        "outcome": OUTCOME_SUCCESS if success else OUTCOME_REFUSED,
        "outcomeDesc": description,
        "agent": agents,
        "source": {"observer": {"display": f"ASCMI FHIR server {base_url}"},
                   "type": [{"system": SOURCE_TYPE, "code": "4", "display": "Application Server"}]},
    }
