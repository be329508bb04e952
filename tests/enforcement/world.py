"""A person whose ASCMI form says do-not-share for one category, their clinical data, and four kinds of callers.

Filed the way a deployment files them: Care Partners registered through plain FHIR, the form through
``POST /ascmi/forms``, clinical data by an administrator (labels sent in ``meta.security``).

Callers (all with purpose TREAT):

| key | who | sees consent records | sees general health | sees the do-not-share category |
|---|---|---|---|---|
| MEMBER | PLAN, a covered health plan, network member | yes | yes (consent) | no |
| OUTSIDER | a covered provider, not a member, never named | no | yes (legal floor) | no |
| EXCLUDED | PART2, excluded on the form (a member: named on a form) | yes | no | no |
| REVOKED | MEMBER after the person revoked the form | yes | no | no |
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass, field
from typing import Any

import httpx

from fhir_server.consent.tables import load_tables
from tests.decision_http.world import ALL_CATEGORIES, PARTNERS, PEOPLE, cin, register
from tests.enforcement.conftest import partner_headers

CONFIDENTIALITY = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"
LOINC = "http://loinc.org"
SENSITIVE = [c for c in ALL_CATEGORIES if c != "general-health"]


def labels_of(category: str) -> list[dict[str, str]]:
    return [c.to_json() for c in load_tables().categories[category].labels]


def form_for(category: str, person: dict[str, Any], form_id: str = "ENF-1") -> dict[str, Any]:
    """Every category shared except ``category`` (explicitly do-not-share); PART2 excluded."""
    categories = {c: ("do-not-share" if c == category else "share") for c in ALL_CATEGORIES}
    return {
        "formType": "NON-AB133", "formVersion": "2025.1", "formId": form_id, "signedDate": "2025-02-01",
        "individual": person, "collector": PARTNERS["CLINIC"],
        "recipients": {"allCarePartners": True, "exclude": [PARTNERS["PART2"]]},
        "purposes": ["TREAT", "COC"], "categories": categories,
        "expiration": {"date": "2031-01-01"},
        "signature": {"signer": "individual", "method": "electronic", "date": "2025-02-01"},
        "acknowledgements": {"rightToRevoke": True, "redisclosureNotice": True, "noConditioning": True,
                             "copyReceived": True},
    }


def revocation_for(person: dict[str, Any], form_id: str = "ENF-1") -> dict[str, Any]:
    return {"revokes": {"formId": form_id}, "individual": person, "effectiveDate": "2025-03-01",
            "signedDate": "2025-03-01", "signature": {"signer": "individual", "method": "wet", "date": "2025-03-01"},
            "receivedBy": PARTNERS["CLINIC"]}


@dataclass
class World:
    client: httpx.AsyncClient
    category: str
    person: dict[str, Any] = field(default_factory=dict)
    patient: str = ""  # Patient/<id>
    orgs: dict[str, str] = field(default_factory=dict)
    consent: str = ""
    ids: dict[str, str] = field(default_factory=dict)  # name → Type/id of the clinical data
    clients: dict[str, str] = field(default_factory=dict)  # caller key → client_id
    tokens: dict[str, dict[str, str]] = field(default_factory=dict)  # caller key → Authorization header

    def headers(self, key: str) -> dict[str, str]:
        return self.tokens[key]

    def withheld(self, key: str) -> list[str]:
        """Resources caller ``key`` must never learn of."""
        secret = ["secret_obs", "secret_cond", "secret_obs2"]
        if key in ("EXCLUDED", "REVOKED"):
            secret += ["general_obs", "general_obs2", "report"]
        return [self.ids[k] for k in secret]

    def shown(self, key: str) -> list[str]:
        return [self.ids[k] for k in ("general_obs", "general_obs2", "report") if self.ids[k] not in
                self.withheld(key)]

    async def post(self, resource: dict[str, Any]) -> str:
        r = await self.client.post(f"/fhir/{resource['resourceType']}", json=resource)
        assert r.status_code == 201, r.text
        return f"{resource['resourceType']}/{r.json()['id']}"


def observation(patient: str, code: str, labels: list[dict[str, str]] | None = None,
                performer: str | None = None) -> dict[str, Any]:
    obs: dict[str, Any] = {"resourceType": "Observation", "status": "final",
                           "code": {"coding": [{"system": LOINC, "code": code}]},
                           "subject": {"reference": patient}, "effectiveDateTime": "2025-02-10"}
    if labels:
        obs["meta"] = {"security": labels}
    if performer:
        obs["performer"] = [{"reference": performer}]
    return obs


async def build(client: httpx.AsyncClient, category: str, person_key: str = "A") -> World:
    world = World(client, category)
    for key, affiliations in (("PLAN", [("2020-01-01", None, True)]), ("OUTSIDER", [])):
        world.orgs[key] = await register(client, key, affiliations)
    world.person = PEOPLE[person_key]
    r = await client.post("/ascmi/forms", json=form_for(category, world.person))
    assert r.status_code == 201, r.text
    world.consent = "Consent/" + r.headers["location"].split("/")[-3]
    found = (await client.get(f"/fhir/Patient?identifier={cin(person_key)}")).json()
    world.patient = f"Patient/{found['entry'][0]['resource']['id']}"
    for key in ("PART2", "CLINIC"):
        org = (await client.get("/fhir/Organization", params={
            "identifier": f"{PARTNERS[key]['identifiers'][0]['system']}|{PARTNERS[key]['identifiers'][0]['value']}"
        })).json()
        world.orgs[key] = f"Organization/{org['entry'][0]['resource']['id']}"
    # Care Partner clients with real tokens (purpose TREAT). REVOKED is another client of MEMBER's Organization:
    # the AuditEvents of MEMBER's own earlier requests (which name what it was shown then) are not REVOKED's.
    for key, org in (("MEMBER", "PLAN"), ("OUTSIDER", "OUTSIDER"), ("EXCLUDED", "PART2"), ("REVOKED", "PLAN")):
        world.clients[key], world.tokens[key] = await partner_headers(
            client, world.orgs[org], name=f"client-{key.lower()}" if key == "REVOKED" else None)
    secret = [*labels_of(category), {"system": CONFIDENTIALITY, "code": "R"}]
    ids = world.ids
    ids["doctor"] = await world.post({"resourceType": "Practitioner", "name": [{"family": "Visible"}]})
    ids["secret_doctor"] = await world.post({"resourceType": "Practitioner", "name": [{"family": "Hidden"}]})
    ids["general_obs"] = await world.post(observation(world.patient, "1111-1", performer=ids["doctor"]))
    ids["secret_obs"] = await world.post(observation(world.patient, "2222-2", secret, ids["secret_doctor"]))
    ids["general_obs2"] = await world.post(observation(world.patient, "1111-1", performer=ids["doctor"]))
    ids["secret_obs2"] = await world.post(observation(world.patient, "2222-2", secret, ids["doctor"]))
    ids["secret_cond"] = await world.post({
        "resourceType": "Condition", "meta": {"security": secret}, "subject": {"reference": world.patient},
        "code": {"coding": [{"system": LOINC, "code": "2222-2"}]}})
    ids["report"] = await world.post({
        "resourceType": "DiagnosticReport", "status": "final", "subject": {"reference": world.patient},
        "code": {"coding": [{"system": LOINC, "code": "3333-3"}]},
        "result": [{"reference": ids["secret_obs"]}, {"reference": ids["general_obs"]}]})
    return world


async def revoke(world: World) -> None:
    r = await world.client.post("/ascmi/revocations", json=revocation_for(world.person))
    assert r.status_code == 201, r.text


def _without_report_results(node: Any) -> Any:
    """The visible DiagnosticReport refers to a withheld Observation by design (the chain test goes through it):
    that reference is the report's own content, so it is left out of the leak check."""
    if isinstance(node, dict):
        return {k: _without_report_results(v) for k, v in node.items()
                if not (k == "result" and node.get("resourceType") == "DiagnosticReport")}
    if isinstance(node, list):
        return [_without_report_results(v) for v in node]
    return node


def leaks(response: httpx.Response, withheld: list[str]) -> list[str]:
    """Withheld ids that appear in a response, in its text or inside a base64 cursor of one of its links."""
    try:
        text = json.dumps(_without_report_results(response.json()))
    except ValueError:
        text = response.text
    text += " " + " ".join(f"{k}: {v}" for k, v in response.headers.items())
    found = [ref for ref in withheld if ref.split("/")[1] in text]
    for cursor in re.findall(r"_cursor=([A-Za-z0-9_\-%]+)", text):
        raw = cursor.replace("%3D", "=")
        try:
            decoded = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode("utf-8", "replace")
        except ValueError:
            continue
        found += [ref for ref in withheld if ref.split("/")[1] in decoded]
    return found
