"""``fhir-server ascmi disclosures --patient <CIN or id>``: a person's accounting of disclosures in plain words.

Reads the disclosure AuditEvents (:mod:`.disclosure`) about the person — ``AuditEvent?patient=Patient/<id>`` — and
says, oldest first, who received what category of information, when, for which purpose and on which basis::

    2026-12-07T01:23:45.120Z  Golden Poppy Health Plan (Organization/7, client plan-app) received general health,
      mental health for TREAT (search-type /fhir/Observation?subject=Patient/3) — basis: consent
      Consent/9/_history/1
"""

from __future__ import annotations

from typing import Any

from fhir_server.consent.disclosure import DETAIL_BASIS, DETAIL_CATEGORY, is_disclosure
from fhir_server.fhir import jsonio
from fhir_server.fhir.search.api import parse_search
from fhir_server.store.base import Store

BASIS_WORDS = {"consent": "the person's consent", "legal-floor": "the law, without consent (legal floor)",
               "consent-record": "a consent record (network member or named on the form)"}


async def find_patient(store: Store, key: str, cin_system: str) -> str | None:
    """A Patient id from an id or a Medi-Cal CIN."""
    found = await store.read("Patient", key)
    if found is not None and not found.deleted:
        return found.id
    page = await store.search(parse_search("Patient", [("identifier", f"{cin_system}|{key}")], strict=True))
    return page.matches[0].id if page.matches else None


async def events_about(store: Store, patient_id: str) -> list[dict[str, Any]]:
    query = parse_search("AuditEvent", [("patient", f"Patient/{patient_id}"), ("_count", "1000"),
                                        ("_total", "none")], strict=True, max_count=1000)
    out: list[dict[str, Any]] = []
    while True:
        page = await store.search(query)
        out += [jsonio.loads(v.body) for v in page.matches if v.body]
        if not page.next_cursor:
            break
        query = query.with_cursor(page.next_cursor)
    return sorted((e for e in out if is_disclosure(e)),
                  key=lambda e: str(e.get("recorded", "")))


def _basis(text: str) -> str:
    word, _, ref = text.partition(" ")
    return BASIS_WORDS.get(word, word) + (f" ({ref})" if ref else "")


def lines(patient_id: str, events: list[dict[str, Any]], names: dict[str, str]) -> list[str]:
    """The report: one paragraph per disclosure; ``names`` maps ``Organization/<id>`` to its name."""
    out = [f"Disclosures of information about Patient/{patient_id}: {len(events)}"]
    for e in events:
        client = org = purpose = "?"
        for agent in e.get("agent") or []:
            who = agent.get("who") or {}
            if agent.get("requestor") and (who.get("identifier") or {}).get("value"):
                client = str((who.get("identifier") or {}).get("value", "?"))
                purpose = ", ".join(c.get("code", "?") for p in agent.get("purposeOfUse") or []
                                    for c in p.get("coding") or []) or "no stated purpose"
            elif str(who.get("reference", "")).startswith("Organization/"):
                org = str(who["reference"])
        query = next((x.get("description", "") for x in e.get("entity") or [] if "query" in x), "")
        told = e.get("outcomeDesc", "")
        mine: dict[str, Any] = next((x for x in e.get("entity") or []
                     if (x.get("what") or {}).get("reference") == f"Patient/{patient_id}"), {})
        details = mine.get("detail") or []
        categories = [d["valueString"].replace("-", " ") for d in details if d.get("type") == DETAIL_CATEGORY]
        bases = [_basis(d["valueString"]) for d in details if d.get("type") == DETAIL_BASIS]
        who = f"{names.get(org, org)} ({org}, client {client})" if org != "?" else f"client {client}"
        interaction = ", ".join(s.get("code", "") for s in e.get("subtype") or [])
        out.append(f"{e.get('recorded')}  {who} received {', '.join(categories) or 'information'} for {purpose} "
                   f"({interaction} {query}) — {mine.get('description', told)}; basis: {'; '.join(bases) or 'n/a'}")
    return out


async def report(store: Store, key: str, cin_system: str) -> list[str] | None:
    patient_id = await find_patient(store, key, cin_system)
    if patient_id is None:
        return None
    events = await events_about(store, patient_id)
    orgs = {a["who"]["reference"] for e in events for a in e.get("agent") or []
            if (a.get("who") or {}).get("reference", "").startswith("Organization/")}
    found = await store.read_many([("Organization", ref.split("/", 1)[1]) for ref in orgs])
    names = {f"Organization/{v.id}": str(jsonio.loads(v.body).get("name", "")) for v in found if v.body}
    return lines(patient_id, events, names)
