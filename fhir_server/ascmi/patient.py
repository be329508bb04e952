"""The form's ``individual`` → Patient, matched by Medi-Cal CIN or else by a collector-scoped match key.

Why conditional *create* (``POST`` + ``ifNoneExist``) and not conditional update (``PUT
Patient?identifier=…``): the Patient may already be maintained by an EHR or a plan, and a conditional update
replaces the whole resource, so a form would wipe identifiers, telecoms or links it never knew about. With
``ifNoneExist`` the transaction processor either creates the Patient or binds the entry's ``urn:uuid`` to the
one found (FHIR R4 §3.1.0.8.1), and every reference in the bundle follows. The form itself stays on file
(Consent + DocumentReference), so nothing the person wrote is lost; demographic changes are the
patient-administration system's job.

Without a CIN, the match key is an identifier under ``[canonical]/sid/ascmi-individual`` whose value is a
SHA-256 of the collector's identifier + folded family name + given name + birth date. It is exact (a token
search), whereas FHIR string search on names is a prefix match ("Ana" finds "Anabel"), and being a hash it
keeps names and birth dates out of conditional-request URLs and the logs that record them.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from typing import Any

from fhir_server.ascmi.bundle import escape_token
from fhir_server.ascmi.partners import partner_key
from fhir_server.ascmi.terminology import Terminology
from fhir_server.ascmi.vocab import BCP47, MEDICAID_NUMBER

_BCP47 = re.compile(r"^[a-zA-Z]{2,3}(-[A-Za-z0-9]{2,8})*$")


def fold(text: str) -> str:
    """Case- and accent-folded, single-spaced: ``"  José  María "`` → ``"jose maria"``."""
    decomposed = unicodedata.normalize("NFKD", text)
    plain = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return " ".join(plain.casefold().split())


def cin_identifier(cin: str, terminology: Terminology) -> dict[str, Any]:
    return {
        "use": "official",
        "type": MEDICAID_NUMBER,
        "system": terminology.canonical.medi_cal_cin,
        "value": cin,
    }


def match_identifier(individual: dict[str, Any], collector: dict[str, Any], terminology: Terminology) -> dict[str, Any]:
    key = "|".join(
        [
            partner_key(collector),
            fold(individual["familyName"]),
            fold(individual["givenName"]),
            individual["birthDate"],
        ]
    )
    value = "sha256-" + hashlib.sha256(key.encode("utf-8")).hexdigest()
    return {
        "use": "secondary",
        "system": terminology.canonical.sid("ascmi-individual"),
        "value": value,
        "assigner": {"display": collector["name"]},
    }


def match_query(individual: dict[str, Any], collector: dict[str, Any], terminology: Terminology) -> str:
    """The ``ifNoneExist`` search: the CIN when known, else the collector-scoped match key."""
    if individual.get("mediCalId"):
        ident = cin_identifier(individual["mediCalId"], terminology)
    else:
        ident = match_identifier(individual, collector, terminology)
    return f"identifier={escape_token(ident['system'])}|{escape_token(ident['value'])}"


def patient(individual: dict[str, Any], collector: dict[str, Any], terminology: Terminology) -> dict[str, Any]:
    identifiers = [match_identifier(individual, collector, terminology)]
    if individual.get("mediCalId"):
        identifiers.insert(0, cin_identifier(individual["mediCalId"], terminology))
    names: list[dict[str, Any]] = [
        {"use": "official", "family": individual["familyName"], "given": [individual["givenName"]]}
    ]
    names += [{"text": other} for other in individual.get("otherNames", [])]
    resource: dict[str, Any] = {
        "resourceType": "Patient",
        "meta": {"profile": [terminology.canonical.structuredefinition("ASCMIPatient")]},
        "identifier": identifiers,
        "active": True,
        "name": names,
    }
    telecom = [{"system": "phone", "value": individual["phone"]}] if individual.get("phone") else []
    telecom += [{"system": "email", "value": individual["email"]}] if individual.get("email") else []
    if telecom:
        resource["telecom"] = telecom
    resource["birthDate"] = individual["birthDate"]
    if individual.get("address"):
        resource["address"] = [{"use": "home", **individual["address"], "country": "US"}]
    if individual.get("preferredLanguage"):
        resource["communication"] = [{"language": _language(individual["preferredLanguage"]), "preferred": True}]
    return resource


def _language(text: str) -> dict[str, Any]:
    if _BCP47.match(text):
        return {"coding": [{"system": BCP47, "code": text}], "text": text}
    return {"text": text}
