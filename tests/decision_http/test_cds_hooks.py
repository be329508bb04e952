"""CDS Hooks ``patient-consent-consult`` at the server root, in the LEAP-CDS shape (ASCMI.md §5 CDS Hooks):
which of the ``content`` may go; partial permits carry one REDACT obligation listing the denied labels."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from tests.decision_http.world import CIN, RECIPIENTS, World, cin, label

pytestmark = pytest.mark.asyncio(loop_scope="module")

REDACT = "REDACT"


def resource(*codes: str) -> dict[str, Any]:
    res: dict[str, Any] = {"resourceType": "Observation", "status": "final", "code": {"text": "x"}}
    if codes:
        res["meta"] = {"security": [label(code) for code in codes]}
    return res


def consult(person: str, recipient: str, purposes: Any, content: list[dict[str, Any]] | None = None
            ) -> dict[str, Any]:
    context: dict[str, Any] = {
        "patientId": [{"system": CIN, "value": cin(person)}],
        "actor": [{"system": s, "value": v} for s, v in RECIPIENTS[recipient]],
        "purposeOfUse": purposes,
        "category": ["http://hl7.org/fhir/ValueSet/consent-category|64292-6"],
        "class": [],
    }
    if content is not None:
        context["content"] = {"resourceType": "Bundle", "type": "collection",
                              "entry": [{"fullUrl": f"urn:uuid:{i}", "resource": r} for i, r in enumerate(content)]}
    return {"hook": "patient-consent-consult", "hookInstance": "7e5a0b1c-test", "context": context}


@dataclass(frozen=True)
class CdsCase:
    id: str
    body: dict[str, Any]
    decision: str  # NO_CONSENT | CONSENT_PERMIT | CONSENT_DENY
    outcome: str
    basis: str
    based_on: str | None
    obligations: tuple[str, ...] = ()
    redacted: tuple[str, ...] = ()


CASES = [
    CdsCase("no-content-is-general-health", consult("A", "CBO", ["TREAT"]), "CONSENT_PERMIT", "permit", "consent",
            "A-1"),
    CdsCase("partial-permit-redacts-denied-labels",
            consult("A", "CLINIC", ["TREAT"], [resource("MH"), resource("SUD"), resource()]),
            "CONSENT_PERMIT", "permit", "legal-floor", "A-1", (REDACT, "NORDSCLCD"), ("SUD",)),
    CdsCase("partial-permit-basis-consent-when-a-permit-rests-on-it",
            consult("A", "CBO", ["TREAT"], [resource("HIV"), resource("SDV", "DVD")]),
            "CONSENT_PERMIT", "permit", "consent", "A-1", (REDACT, "NORDSCLCD"), ("SDV", "DVD")),
    CdsCase("all-denied", consult("D", "CLINIC", ["TREAT"], [resource("N"), resource("MH")]), "CONSENT_DENY",
            "deny", "consent", "D-1"),
    CdsCase("revocation-denies", consult("E", "CLINIC", ["TREAT"]), "CONSENT_DENY", "deny", "consent", "E-rev"),
    CdsCase("unknown-patient-non-covered", consult("Z", "CBO", ["TREAT"]), "NO_CONSENT", "deny", "no-consent", None),
    CdsCase("unknown-patient-covered-floor", consult("Z", "CLINIC", ["TREAT"]), "NO_CONSENT", "permit",
            "legal-floor", None),
    CdsCase("purpose-as-single-string", consult("A", "CBO", "TREAT"), "CONSENT_PERMIT", "permit", "consent", "A-1"),
    CdsCase("several-purposes-most-permissive-wins", consult("A", "CBO", ["HPAYMT", "TREAT"]), "CONSENT_PERMIT",
            "permit", "consent", "A-1"),
    CdsCase("several-purposes-all-denied", consult("A", "CBO", ["HPAYMT", "HOPERAT"]), "CONSENT_DENY", "deny",
            "consent", "A-1"),
    CdsCase("part2-content-named-recipient", consult("I", "NAMED", ["TREAT"], [resource("42CFRPart2", "SUD")]),
            "CONSENT_PERMIT", "permit", "consent", "I-1", ("42CFRPart2", "NORDSCLCD")),
    CdsCase("unrelated-security-codes-count-as-general-health",
            consult("A", "CBO", ["TREAT"], [{"resourceType": "Observation", "status": "final", "code": {"text": "x"},
                                             "meta": {"security": [{"system": "urn:x", "code": "R"}]}}]),
            "CONSENT_PERMIT", "permit", "consent", "A-1"),
    CdsCase("psythpn-redacted", consult("A", "CLINIC", ["TREAT"], [resource("PSYTHPN"), resource("N")]),
            "CONSENT_PERMIT", "permit", "legal-floor", "A-1", (REDACT,), ("PSYTHPN",)),
    CdsCase("excluded-recipient", consult("J", "PLAN", ["HPAYMT"], [resource("N")]), "CONSENT_DENY", "deny",
            "consent", "J-1"),
]


async def test_discovery_lists_the_consult_service(world: World) -> None:
    r = await world.client.get("/cds-services")
    assert r.status_code == 200
    services = r.json()["services"]
    assert [(s["id"], s["hook"]) for s in services] == [("patient-consent-consult", "patient-consent-consult")]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
async def test_consult(world: World, case: CdsCase) -> None:
    r = await world.client.post("/cds-services/patient-consent-consult", json=case.body)
    assert r.status_code == 200, r.text
    cards = r.json()["cards"]
    assert len(cards) == 1
    card = cards[0]
    ext = card["extension"]
    assert (card["summary"], ext["decision"], ext["outcome"], ext["basis"]) == (
        case.decision, case.decision, case.outcome, case.basis)
    assert ext.get("basedOn") == (world.versions[case.based_on] if case.based_on else None)
    codes = [o["id"]["code"] for o in ext["obligations"]]
    assert sorted(codes) == sorted(case.obligations)
    redact = [o for o in ext["obligations"] if o["id"]["code"] == REDACT]
    if case.redacted:
        assert [c["code"] for c in redact[0]["parameters"]["codes"]] == list(case.redacted)


MALFORMED = [
    ("not-an-object", ["hook"]),
    ("no-context", {"hook": "patient-consent-consult"}),
    ("wrong-hook", {**consult("A", "CBO", ["TREAT"]), "hook": "patient-view"}),
    ("patient-not-array", {"context": {**consult("A", "CBO", ["TREAT"])["context"], "patientId": "A"}}),
    ("patient-empty", {"context": {**consult("A", "CBO", ["TREAT"])["context"], "patientId": []}}),
    ("actor-missing", {"context": {k: v for k, v in consult("A", "CBO", ["TREAT"])["context"].items()
                                   if k != "actor"}}),
    ("purpose-missing", {"context": {k: v for k, v in consult("A", "CBO", ["TREAT"])["context"].items()
                                     if k != "purposeOfUse"}}),
    ("purpose-unknown", consult("A", "CBO", ["ETREAT"])),
    ("content-not-bundle", {"context": {**consult("A", "CBO", ["TREAT"])["context"],
                                        "content": {"resourceType": "Observation"}}}),
]


@pytest.mark.parametrize(("name", "body"), MALFORMED, ids=[m[0] for m in MALFORMED])
async def test_malformed_consult_is_400_with_operation_outcome(world: World, name: str, body: Any) -> None:
    r = await world.client.post("/cds-services/patient-consent-consult", json=body)
    assert r.status_code == 400, r.text
    outcome = r.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["severity"] == "error" and outcome["issue"][0]["code"]


async def test_consult_body_that_is_not_json_is_400(world: World) -> None:
    r = await world.client.post("/cds-services/patient-consent-consult", content=b"{not json",
                                headers={"Content-Type": "application/json"})
    assert r.status_code == 400
    assert r.json()["resourceType"] == "OperationOutcome"
