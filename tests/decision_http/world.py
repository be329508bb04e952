"""A small population of ASCMI forms, revocations and Care Partners, filed over HTTP, for decision tests.

Everything a decision reads is put on file the way a deployment would: forms and revocations through
``POST /ascmi/forms`` / ``POST /ascmi/revocations``; Care Partners no form names are registered through plain
FHIR (a CarePartnerOrganization and an OrganizationAffiliation with the network). No Consent is written by hand.

Timeline of the Care Partners (network membership is global, evaluated at the decision's time T):

| key | type | covered | state | network member |
|---|---|---|---|---|
| CLINIC | provider | yes | CA | from 2024-06-01 (collector of every form; K-1 is the earliest) |
| PLAN | health-plan | yes | CA | from 2020-01-01 (registered directly) |
| CBO | cbo | no | CA | from 2020-01-01 (registered directly) |
| NV | provider | yes | NV | from 2020-01-01 (registered directly) |
| OUTSIDER | provider | yes | CA | never (registered Organization, no affiliation) |
| LAPSED | cbo | no | CA | 2020-01-01 … 2025-06-30 (period.end) |
| INACTIVE | cbo | no | CA | never: its only affiliation has active=false |
| NAMED | ecm-provider | no | CA | from 2025-05-01 (included on I-1) |
| PART2 | part2-program | yes | CA | from 2025-05-01 (excluded on I-1) |
| UNKNOWN | — | — | — | not on file |
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx

CANONICAL = "https://ascmi.example.org/fhir"
CIN = f"{CANONICAL}/sid/medi-cal-cin"
NPI = "http://hl7.org/fhir/sid/us-npi"
EIN = "urn:oid:2.16.840.1.113883.4.4"
NETWORK = "Organization/ascmi-care-partner-network"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
ACT_REASON = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
CONFIDENTIALITY = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"
CATEGORY = f"{CANONICAL}/CodeSystem/ascmi-category"
PURPOSE = f"{CANONICAL}/CodeSystem/ascmi-purpose"

ALL_CATEGORIES = (
    "general-health", "mental-health", "substance-use-part2", "substance-use", "hiv", "sti",
    "reproductive-health", "gender-affirming-care", "intimate-partner-violence", "social-services",
    "developmental-services", "education",
)


def partner(name: str, identifiers: list[tuple[str, str]], kind: str, covered: bool,
            state: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"name": name, "identifiers": [{"system": s, "value": v} for s, v in identifiers],
                           "type": kind, "coveredEntity": covered}
    if state:
        out["state"] = state
    return out


PARTNERS: dict[str, dict[str, Any]] = {
    "CLINIC": partner("Sierra Vista Community Clinic", [(NPI, "1000000001")], "provider", True),
    "PLAN": partner("Golden Poppy Health Plan", [(NPI, "1000000002"), (EIN, "94-0000002")], "health-plan", True),
    "CBO": partner("Eureka Food Bank", [(EIN, "94-0000003")], "cbo", False),
    "NV": partner("Reno Valley Medical", [(NPI, "1000000004")], "provider", True, "NV"),
    "OUTSIDER": partner("Lone Pine Clinic", [(NPI, "1000000005")], "provider", True),
    "LAPSED": partner("Old Town Pantry", [(EIN, "94-0000006")], "cbo", False),
    "INACTIVE": partner("Quiet Harbor Shelter", [(EIN, "94-0000007")], "cbo", False),
    "NAMED": partner("Harbor Light ECM", [(NPI, "1000000008")], "ecm-provider", False),
    "PART2": partner("Coastal Recovery Center", [(NPI, "1000000009")], "part2-program", True),
}

#: identifiers a request names the recipient by (several identifiers all name one party; any match counts)
RECIPIENTS: dict[str, list[tuple[str, str]]] = {
    **{k: [(i["system"], i["value"]) for i in p["identifiers"]] for k, p in PARTNERS.items()},
    "UNKNOWN": [(NPI, "1999999999")],
    "CBO+UNKNOWN": [(NPI, "1999999999"), (EIN, "94-0000003")],
    "PLAN-BY-EIN": [(EIN, "94-0000002")],
}

#: Care Partners registered through plain FHIR: key → [(period.start, period.end, active)] affiliations
DIRECT: dict[str, list[tuple[str, str | None, bool]]] = {
    "PLAN": [("2020-01-01", None, True)],
    "CBO": [("2020-01-01", None, True)],
    "NV": [("2020-01-01", None, True)],
    "OUTSIDER": [],
    "LAPSED": [("2020-01-01", "2025-06-30", True)],
    "INACTIVE": [("2020-01-01", None, False)],
}

PURPOSES = {"TREAT", "COC", "CAREMGT", "HPAYMT", "HOPERAT"}

#: label code → system (§2 table)
LABEL_SYSTEMS = {"N": CONFIDENTIALITY, "social-services": CATEGORY, "education": CATEGORY}


def label(code: str) -> dict[str, str]:
    return {"system": LABEL_SYSTEMS.get(code, ACT_CODE), "code": code}


def purpose(code: str) -> dict[str, str]:
    return {"system": ACT_REASON if code in PURPOSES else PURPOSE, "code": code}


def individual(key: str, given: str, family: str, birth: str) -> dict[str, Any]:
    return {"givenName": given, "familyName": family, "birthDate": birth, "mediCalId": cin(key)}


def cin(key: str) -> str:
    """A Medi-Cal CIN (8 digits and a letter) per person key: ``cin("A")`` → ``"90000001A"``."""
    return f"9{ord(key) - ord('A') + 1:07d}{key}"


def form(form_id: str, person: dict[str, Any], signed: str, shared: list[str], *,
         form_type: str = "NON-AB133", purposes: list[str] | None = None, all_care_partners: bool = True,
         include: tuple[str, ...] = (), exclude: tuple[str, ...] = (), expires: str | None = "2031-01-01",
         event: str | None = None, parent: bool = False, minor: list[str] | None = None) -> dict[str, Any]:
    """An ASCMI form; categories not in ``shared`` are marked do-not-share (half of them explicitly)."""
    categories = {c: "share" for c in shared}
    categories |= {c: "do-not-share" for c in ALL_CATEGORIES[::2] if c not in shared}
    expiration: dict[str, str] = {}
    if expires:
        expiration["date"] = expires
    if event:
        expiration["event"] = event
    signature: dict[str, Any] = {"signer": "individual", "method": "electronic", "date": signed}
    if parent:
        signature = {"signer": "representative", "method": "wet", "date": signed,
                     "representative": {"name": f"Parent of {person['givenName']}", "relationship": "parent",
                                        "authority": "Parent of a minor"}}
    out: dict[str, Any] = {
        "formType": form_type, "formVersion": "2025.1", "formId": form_id, "signedDate": signed,
        "individual": person, "collector": PARTNERS["CLINIC"],
        "recipients": {"allCarePartners": all_care_partners},
        "purposes": purposes or ["TREAT", "COC"], "categories": categories,
        "expiration": expiration, "signature": signature,
        "acknowledgements": {"rightToRevoke": True, "redisclosureNotice": True, "noConditioning": True,
                             "copyReceived": True},
    }
    if include:
        out["recipients"]["include"] = [PARTNERS[k] for k in include]
    if exclude:
        out["recipients"]["exclude"] = [PARTNERS[k] for k in exclude]
    if minor:
        out["minorSignature"] = {"date": signed, "categories": minor}
    return out


def revocation(form_id: str, person: dict[str, Any], signed: str, effective: str) -> dict[str, Any]:
    return {"revokes": {"formId": form_id}, "individual": person, "effectiveDate": effective,
            "signedDate": signed, "signature": {"signer": "individual", "method": "wet", "date": signed},
            "receivedBy": PARTNERS["CLINIC"]}


PEOPLE = {
    "A": individual("A", "Alice", "Adams", "1980-04-04"),
    "B": individual("B", "Bob", "Baker", "1975-05-05"),
    "D": individual("D", "Dana", "Diaz", "1990-01-20"),
    "E": individual("E", "Eve", "Evans", "1985-03-03"),
    "F": individual("F", "Frank", "Fox", "1970-07-07"),
    "G": individual("G", "Gina", "Garcia", "2010-06-01"),  # 15 on 2025-10-01, 18 on 2028-06-01
    "H": individual("H", "Hugo", "Hill", "2010-09-01"),  # 15 on 2025-12-01
    "I": individual("I", "Iris", "Ito", "1988-08-08"),
    "J": individual("J", "Jack", "Jones", "1965-06-15"),
    "K": individual("K", "Kim", "Kent", "1995-09-09"),
    "L": individual("L", "Lou", "Lane", "1982-02-02"),
}

SENSITIVE_A = ["general-health", "mental-health", "substance-use-part2", "hiv", "sti", "reproductive-health",
               "gender-affirming-care", "social-services"]

#: (key, kind, body) in filing order; a key names the Consent the filing produced
FILINGS: list[tuple[str, str, dict[str, Any]]] = [
    ("K-1", "form", form("K-1", PEOPLE["K"], "2024-06-01", ["general-health", "social-services"],
                         purposes=["TREAT", "social-services"], expires="2025-06-01")),
    ("A-1", "form", form("A-1", PEOPLE["A"], "2025-02-01", SENSITIVE_A,
                         purposes=["TREAT", "COC", "CAREMGT", "social-services"])),
    ("B-1", "form", form("B-1", PEOPLE["B"], "2025-03-01", ["general-health", "mental-health", "hiv"],
                         form_type="AB133", purposes=["TREAT"])),
    ("D-1", "form", form("D-1", PEOPLE["D"], "2025-04-01", [], purposes=["TREAT"])),
    ("E-1", "form", form("E-1", PEOPLE["E"], "2025-01-15", ["general-health", "mental-health", "social-services"],
                         purposes=["TREAT", "social-services"])),
    ("E-rev", "revocation", revocation("E-1", PEOPLE["E"], "2025-08-30", "2025-09-01")),
    # F: the newer form arrives first; the older one is filed as superseded (period.end 2025-06-30)
    ("F-2", "form", form("F-2", PEOPLE["F"], "2025-07-01", ["general-health"],
                         purposes=["TREAT", "social-services"])),
    ("F-1", "form", form("F-1", PEOPLE["F"], "2025-01-10", ["general-health", "social-services", "mental-health"],
                         purposes=["TREAT", "social-services"])),
    ("G-1", "form", form("G-1", PEOPLE["G"], "2025-08-01",
                         ["general-health", "mental-health", "sti", "reproductive-health"],
                         form_type="AB133", parent=True, minor=["mental-health", "sti"])),
    ("H-1", "form", form("H-1", PEOPLE["H"], "2025-09-15", ["general-health", "mental-health", "sti"],
                         purposes=["TREAT"], parent=True)),
    ("I-1", "form", form("I-1", PEOPLE["I"], "2025-05-01", ["general-health", "substance-use-part2", "mental-health"],
                         all_care_partners=False, include=("NAMED",), exclude=("PART2",))),
    ("J-1", "form", form("J-1", PEOPLE["J"], "2025-06-01", ["general-health", "mental-health", "social-services"],
                         purposes=["TREAT", "HPAYMT", "social-services"], exclude=("PLAN",))),
    ("L-1", "form", form("L-1", PEOPLE["L"], "2025-02-01", ["social-services"], purposes=["social-services"],
                         expires=None, event="end-of-services")),
]


@dataclass
class World:
    client: httpx.AsyncClient
    app: Any = None
    base: str = "http://test/fhir"
    consents: dict[str, str] = field(default_factory=dict)  # filing key → Consent id
    versions: dict[str, str] = field(default_factory=dict)  # filing key → absolute versioned URL (current)
    organizations: dict[str, str] = field(default_factory=dict)  # partner key → Organization/<id>
    patients: dict[str, str] = field(default_factory=dict)  # person key → Patient/<id>


def care_partner_organization(p: dict[str, Any]) -> dict[str, Any]:
    """A CarePartnerOrganization as a deployment registers one through plain FHIR (§5 Direct registration)."""
    org: dict[str, Any] = {
        "resourceType": "Organization",
        "meta": {"profile": [f"{CANONICAL}/StructureDefinition/CarePartnerOrganization"]},
        "extension": [{"url": f"{CANONICAL}/StructureDefinition/covered-entity",
                       "valueBoolean": p["coveredEntity"]}],
        "identifier": p["identifiers"],
        "active": True,
        "type": [{"coding": [{"system": f"{CANONICAL}/CodeSystem/care-partner-type", "code": p["type"]}]}],
        "name": p["name"],
    }
    if p.get("state"):
        org["address"] = [{"state": p["state"]}]
    return org


async def register(client: httpx.AsyncClient, key: str, affiliations: list[tuple[str, str | None, bool]]) -> str:
    r = await client.post("/fhir/Organization", json=care_partner_organization(PARTNERS[key]))
    assert r.status_code == 201, r.text
    reference = f"Organization/{r.json()['id']}"
    for start, end, active in affiliations:
        period = {"start": start} | ({"end": end} if end else {})
        r = await client.post("/fhir/OrganizationAffiliation", json={
            "resourceType": "OrganizationAffiliation", "active": active, "period": period,
            "organization": {"reference": NETWORK}, "participatingOrganization": {"reference": reference}})
        assert r.status_code == 201, r.text
    return reference


async def build(client: httpx.AsyncClient) -> World:
    world = World(client)
    for key, affiliations in DIRECT.items():
        world.organizations[key] = await register(client, key, affiliations)
    for key, kind, body in FILINGS:
        r = await client.post(f"/ascmi/{kind}s", json=body)
        assert r.status_code == 201, (key, r.text)
        world.consents[key] = r.headers["location"].split("/")[-3]
    for key, cid in world.consents.items():
        r = await client.get(f"/fhir/Consent/{cid}")
        consent = r.json()
        world.versions[key] = f"{world.base}/Consent/{cid}/_history/{consent['meta']['versionId']}"
        person = consent["patient"]["reference"]
        world.patients.setdefault(key.split("-")[0], person)
    return world


def decide_parameters(patient: list[tuple[str, str]], recipient: list[tuple[str, str]], purpose_code: str,
                      labels: tuple[str, ...] = (), time: str | None = None) -> dict[str, Any]:
    """``Consent/$decide`` Parameters exactly as §4 defines them."""
    params: list[dict[str, Any]] = [{"name": "patient", "valueIdentifier": {"system": s, "value": v}}
                                    for s, v in patient]
    params += [{"name": "recipient", "valueIdentifier": {"system": s, "value": v}} for s, v in recipient]
    params.append({"name": "purpose", "valueCoding": purpose(purpose_code)})
    params += [{"name": "label", "valueCoding": label(code)} for code in labels]
    if time is not None:
        params.append({"name": "time", "valueDateTime": time})
    return {"resourceType": "Parameters", "parameter": params}


def outputs(parameters: dict[str, Any]) -> dict[str, list[Any]]:
    """A Parameters answer → name → [values] (``label-decision`` parts → (code, decision))."""
    out: dict[str, list[Any]] = {}
    for p in parameters["parameter"]:
        if p["name"] == "label-decision":
            parts = {q["name"]: q for q in p["part"]}
            value: Any = (parts["label"]["valueCoding"]["code"], parts["decision"]["valueCode"])
        else:
            value = next(v for k, v in p.items() if k.startswith("value"))
        out.setdefault(p["name"], []).append(value)
    return out
