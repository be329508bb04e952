"""The disclosed copy (ASCMI.md rule 7, DS4P): obligations in ``meta.security``, and the Bundle's high-water mark.

Stored bytes never change: the copy is made per response. A searchset or history Bundle for a Care Partner
carries exactly one ``v3-Confidentiality`` code in ``Bundle.meta.security``: the highest of its entries' (an
entry without one counts as ``N``, so the mark never understates what is inside), ``N`` when there is none.

>>> with_obligations(b'{"resourceType":"Observation"}', (Coding(ACT, "NORDSCLCD"),))
b'{"resourceType":"Observation","meta":{"security":[{"system":"http://terminology.hl7.org/CodeSystem/v3-ActCode","code":"NORDSCLCD"}]}}'
>>> high_water_mark([b'{"meta":{"security":[{"system":"' + CONFIDENTIALITY.encode() + b'","code":"R"}]}}', b'{}'])
'R'
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from fhir_server.consent.model import Coding
from fhir_server.fhir import jsonio

ACT = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
CONFIDENTIALITY = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"
ORDER = ("U", "L", "M", "N", "R", "V")  # v3-Confidentiality, least to most restricted
DISPLAY = {"U": "unrestricted", "L": "low", "M": "moderate", "N": "normal", "R": "restricted",
           "V": "very restricted"}


def with_obligations(body: bytes, codes: Iterable[Coding]) -> bytes:
    """``body`` with each obligation Coding added to ``meta.security`` (once)."""
    resource = jsonio.loads(body)
    meta = resource.setdefault("meta", {})
    security: list[dict[str, Any]] = meta.setdefault("security", [])
    present = {(c.get("system"), c.get("code")) for c in security if isinstance(c, dict)}
    for code in codes:
        if (code.system, code.code) not in present:
            security.append(code.to_json())
            present.add((code.system, code.code))
    return jsonio.dumps(resource)


def confidentiality(resource: dict[str, Any]) -> str:
    """The resource's v3-Confidentiality code (the highest if several), ``N`` when it has none."""
    found: list[str] = [str(c["code"]) for c in (resource.get("meta") or {}).get("security") or []
             if isinstance(c, dict) and c.get("system") == CONFIDENTIALITY and c.get("code") in ORDER]
    return max(found, key=ORDER.index) if found else "N"


def high_water_mark(bodies: Iterable[bytes]) -> str:
    best = "N"
    for body in bodies:
        if CONFIDENTIALITY.encode() not in body:  # cheap test first: most resources carry no code
            continue
        code = confidentiality(jsonio.loads(body))
        if ORDER.index(code) > ORDER.index(best):
            best = code
    return best


def label_bundle(bundle: dict[str, Any], bodies: Iterable[bytes]) -> dict[str, Any]:
    """Set the Bundle's one ``v3-Confidentiality`` code (DS4P high-water mark) in ``Bundle.meta.security``."""
    code = high_water_mark(bodies)
    bundle.setdefault("meta", {})["security"] = [{"system": CONFIDENTIALITY, "code": code,
                                                  "display": DISPLAY[code]}]
    return bundle
