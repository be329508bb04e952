"""``Consent/$decide`` latency over a realistic population: ~100,000 Consents for 20,000 people.

Loading: the intake endpoint takes ~0.1 s per form and the transaction endpoint ~650 entries/s for these large
Consents, so the population is written straight through the repository (``repository.resources.create``:
the same stamping and index extraction as any write) into a data directory *before* the measured server starts
on it. What is written is what the mapping produces: ``form_to_bundle`` / ``revocation_to_bundle`` on generated
forms with a fixed clock, in worker processes, their ``urn:uuid``s resolved to ids as the transaction
processor would. Each person's forms (1–8) are mapped newest first, so every older form comes out already
superseded (``inactive``, ``period.end`` = the day before the next one) without a PUT on an existing Consent;
half of the people then revoke their newest form, whose Consent is written in its revoked state. The Care
Partners (34 network members, 6 registered non-members) are written first and passed to the mapping as known
partners.

Measured: sequential ``$decide`` requests over random patients, recipients (one unknown), purposes, 0–3
labels and, for 30 %, a past time (httpx, one connection), against the ``GET /health`` round trip as baseline.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson

from benchmarks.server import running_server
from benchmarks.stats import Row, latencies, p50_p95
from fhir_server.ascmi.bundle import sequential_ids
from fhir_server.ascmi.mapping import form_to_bundle
from fhir_server.ascmi.revocation import revocation_to_bundle
from fhir_server.ascmi.stored import KnownPartner, Stored
from fhir_server.ascmi.terminology import load_terminology
from fhir_server.repository import bootstrap
from fhir_server.repository import resources as repo
from fhir_server.settings import Settings
from fhir_server.store.sqlite import SQLiteStore

CANONICAL = "https://ascmi.example.org/fhir"
CIN = f"{CANONICAL}/sid/medi-cal-cin"
NPI = "http://hl7.org/fhir/sid/us-npi"
NETWORK = "Organization/ascmi-care-partner-network"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
ACT_REASON = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
NOW = datetime(2026, 6, 30, 12, 0, tzinfo=UTC)  # the mapping's clock: fixed, so runs are comparable
CATEGORIES = ["general-health", "mental-health", "substance-use-part2", "substance-use", "hiv", "sti",
              "reproductive-health", "gender-affirming-care", "intimate-partner-violence", "social-services",
              "developmental-services", "education"]
PURPOSES = ["TREAT", "COC", "CAREMGT", "HPAYMT", "HOPERAT", "social-services"]
LABELS = [(ACT_CODE, c) for c in ("MH", "BH", "42CFRPart2", "SUD", "ETH", "HIV", "STD", "SEX", "GENDER", "SDV",
                                  "DVD", "PSYTHPN")] + [
    ("http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "N"),
    (f"{CANONICAL}/CodeSystem/ascmi-category", "social-services")]
KINDS = [("provider", True), ("health-plan", True), ("county-behavioral-health", True), ("ecm-provider", True),
         ("cbo", False), ("community-supports-provider", False), ("part2-program", True), ("hie", False)]
MEMBERS = 34  # the first 34 Care Partners are network members, the other 6 are registered but not members
ACKS = {"rightToRevoke": True, "redisclosureNotice": True, "noConditioning": True, "copyReceived": True}


def partners(n: int = 40) -> list[dict[str, Any]]:
    out = []
    for i in range(n):
        kind, covered = KINDS[i % len(KINDS)]
        out.append({"name": f"Care Partner {i}", "identifiers": [{"system": NPI, "value": f"{1_100_000_000 + i}"}],
                    "type": kind, "coveredEntity": covered, "state": "NV" if i % 13 == 5 else "CA"})
    return out


def organization(p: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "Organization",
            "meta": {"profile": [f"{CANONICAL}/StructureDefinition/CarePartnerOrganization"]},
            "extension": [{"url": f"{CANONICAL}/StructureDefinition/covered-entity",
                           "valueBoolean": p["coveredEntity"]}],
            "identifier": p["identifiers"], "active": True, "name": p["name"],
            "type": [{"coding": [{"system": f"{CANONICAL}/CodeSystem/care-partner-type", "code": p["type"]}]}],
            "address": [{"state": p["state"]}]}


def care_partners(members: list[dict[str, Any]], outsiders: list[dict[str, Any]]
                  ) -> tuple[list[dict[str, Any]], list[KnownPartner]]:
    """Care Partners as a deployment registers them through plain FHIR: network members (an affiliation from
    2020) and a few non-members; the resources to write, and the members as the mapping's known partners."""
    resources: list[dict[str, Any]] = []
    known = []
    for i, p in enumerate(members + outsiders):
        org_id, affiliation_id = f"cp-{i}", f"cp-{i}-network"
        org = {**organization(p), "id": org_id}
        resources.append(org)
        if i < len(members):
            affiliation = {"resourceType": "OrganizationAffiliation", "id": affiliation_id, "active": True,
                           "period": {"start": "2020-01-01"}, "organization": {"reference": NETWORK},
                           "participatingOrganization": {"reference": f"Organization/{org_id}"}}
            resources.append(affiliation)
            known.append(KnownPartner(Stored(org, org_id, "1"), (Stored(affiliation, affiliation_id, "1"),)))
    return resources, known


def cin(n: int) -> str:
    return f"{n:08d}{'ABCDEFGHJK'[n % 10]}"


def person_forms(n: int, rng: random.Random, members: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """1–8 forms for person ``n``, signed in increasing order between 2022 and mid-2026."""
    count = rng.choice([1, 2, 3, 4, 4, 5, 5, 6, 7, 8])
    days = sorted(rng.sample(range(0, 1600), count))
    birth = date(1940 + n % 70, 1 + n % 12, 1 + n % 28)
    individual = {"givenName": f"Given{n}", "familyName": f"Family{n}", "birthDate": birth.isoformat(),
                  "mediCalId": cin(n)}
    forms = []
    for j, d in enumerate(days):
        signed = date(2022, 1, 1) + timedelta(days=d)
        if signed <= birth:
            signed = birth + timedelta(days=1)
        shared = rng.sample(CATEGORIES, rng.randint(0, len(CATEGORIES)))
        form: dict[str, Any] = {
            "formType": "AB133" if n % 3 else "NON-AB133", "formVersion": "2025.1", "formId": f"F-{n}-{j}",
            "signedDate": signed.isoformat(), "individual": individual, "collector": rng.choice(members[:8]),
            "recipients": {"allCarePartners": True}, "purposes": rng.sample(PURPOSES, rng.randint(1, 4)),
            "categories": {c: ("share" if c in shared else "do-not-share") for c in CATEGORIES},
            "expiration": {"date": (signed + timedelta(days=rng.choice([365, 730, 1825]))).isoformat()},
            "signature": {"signer": "individual", "method": "electronic", "date": signed.isoformat()},
            "acknowledgements": ACKS,
        }
        if rng.random() < 0.2:
            form["recipients"]["exclude"] = [rng.choice(members)]
        forms.append(form)
    return forms


def _stored(resource: dict[str, Any], placeholder: str) -> Stored:
    return Stored(resource, placeholder, "1")


def person_entries(n: int, rng: random.Random, members: list[dict[str, Any]], known: list[KnownPartner]
                   ) -> tuple[list[dict[str, Any]], int]:
    """The entries for one person (all forms, newest first, and maybe a revocation); and its Consent count."""
    t = load_terminology(CANONICAL)
    ids = sequential_ids(f"bench/{n}")
    entries: list[dict[str, Any]] = []
    existing: list[Stored] = []
    patient_url: str | None = None
    newest: dict[str, Any] | None = None  # the newest form's Consent entry
    forms = person_forms(n, rng, members)
    for form in reversed(forms):
        bundle = form_to_bundle(form, now=NOW, new_id=ids, known_partners=known, existing_consents=existing,
                                terminology=t)
        got = bundle["entry"]
        if patient_url is None:
            patient_url = got[0]["fullUrl"]
            entries.append(got[0])
        else:  # one Patient per person in the transaction: point this form's entries at the first
            text = json.dumps(got[1:]).replace(got[0]["fullUrl"], patient_url)
            got = [got[0], *json.loads(text)]
        consent = next(e for e in got if e["resource"]["resourceType"] == "Consent")
        newest = newest or consent
        existing.append(_stored(consent["resource"], f"c{n}-{len(existing)}"))
        entries += got[1:]
    consents = len(forms)
    last = forms[-1]
    effective = date.fromisoformat(last["signedDate"]) + timedelta(days=rng.randint(1, 200))
    if rng.random() < 0.5 and effective <= NOW.date():
        assert newest is not None and patient_url is not None
        revocation = {"revokes": {"formId": last["formId"]}, "individual": last["individual"],
                      "effectiveDate": effective.isoformat(), "signedDate": effective.isoformat(),
                      "signature": {"signer": "individual", "method": "wet", "date": effective.isoformat()},
                      "receivedBy": last["collector"]}
        patient = _stored({**entries[0]["resource"], "id": f"p{n}"}, f"p{n}")
        bundle = revocation_to_bundle(revocation, revoked=_stored(newest["resource"], f"c{n}"), patient=patient,
                                      now=NOW, new_id=ids, known_partners=known, terminology=t)
        text = json.dumps(bundle["entry"])
        text = text.replace(f'"Consent/c{n}"', json.dumps(newest["fullUrl"]))
        text = text.replace(f'"Patient/p{n}"', json.dumps(patient_url))
        for entry in json.loads(text):
            if entry["request"]["method"] == "PUT":  # the revoked Consent is created in its revoked state
                newest["resource"] = {k: v for k, v in entry["resource"].items() if k != "id"}
            else:
                entries.append(entry)
        consents += 1
    return entries, consents


def resolved(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Transaction entries → resources with ids, as the transaction processor would store them: each
    ``urn:uuid:<u>`` becomes ``<Type>/<u>`` and the resource gets id ``<u>`` (all entries are creates here)."""
    text = json.dumps([e["resource"] for e in entries])
    for e in entries:
        uid = e["fullUrl"].removeprefix("urn:uuid:")
        text = text.replace(json.dumps(e["fullUrl"]), json.dumps(f"{e['resource']['resourceType']}/{uid}"))
    out = json.loads(text)
    for e, resource in zip(entries, out, strict=True):
        assert e["request"]["method"] == "POST"
        resource["id"] = e["fullUrl"].removeprefix("urn:uuid:")
    return out


def chunk(start: int, stop: int) -> tuple[bytes, int]:
    """People ``start…stop-1`` as resources with ids (JSON bytes, cheap to ship between processes) and their
    Consent count. Runs in a worker process; deterministic per chunk."""
    all_partners = partners()
    members, outsiders = all_partners[:MEMBERS], all_partners[MEMBERS:]
    _, known = care_partners(members, outsiders)
    rng = random.Random(start)
    resources: list[dict[str, Any]] = []
    consents = 0
    for n in range(start, stop):
        entries, c = person_entries(n, rng, members, known)
        resources += resolved(entries)
        consents += c
    return orjson.dumps(resources), consents


async def _write(store: SQLiteStore, resources: list[dict[str, Any]]) -> None:
    async with store.transaction() as tx:
        for resource in resources:
            await repo.create(tx, resource, id=resource.pop("id"), check_refs=False)


async def preload(data_dir: Path, people: int, per_chunk: int = 50) -> tuple[int, int]:
    """Write the population through the repository into a store no server has open yet; (consents,
    resources). Worker processes map the forms while this one writes (one transaction per chunk)."""
    store = SQLiteStore(Settings(data_dir=data_dir).sqlite_path)
    await store.open()
    loop = asyncio.get_running_loop()
    try:
        await bootstrap.load(store, CANONICAL, True)
        all_partners = partners()
        partner_resources, _ = care_partners(all_partners[:MEMBERS], all_partners[MEMBERS:])
        written = len(partner_resources)
        await _write(store, partner_resources)
        consents = 0
        starts = range(0, people, per_chunk)
        with ProcessPoolExecutor(max_workers=max(1, min(4, (os.cpu_count() or 2) - 1))) as pool:
            futures = [loop.run_in_executor(pool, chunk, s, min(s + per_chunk, people)) for s in starts]
            for future in futures:
                body, c = await future
                batch = orjson.loads(body)
                await _write(store, batch)
                written += len(batch)
                consents += c
        return consents, written
    finally:
        await store.close()


def decide_body(rng: random.Random, people: int, recipients: list[dict[str, Any]]) -> dict[str, Any]:
    params: list[dict[str, Any]] = [
        {"name": "patient", "valueIdentifier": {"system": CIN, "value": cin(rng.randrange(people))}},
        {"name": "recipient", "valueIdentifier": rng.choice(recipients)},
        {"name": "purpose", "valueCoding": {"system": ACT_REASON, "code": rng.choice(PURPOSES[:5])}}]
    params += [{"name": "label", "valueCoding": {"system": s, "code": c}}
               for s, c in rng.sample(LABELS, rng.choice([0, 1, 1, 2, 3]))]
    if rng.random() < 0.3:
        day = date(2022, 1, 1) + timedelta(days=rng.randrange(1600))
        params.append({"name": "time", "valueDateTime": day.isoformat()})
    return {"resourceType": "Parameters", "parameter": params}


def run(base: str, people: int = 20_000, n_decide: int = 2000) -> list[Row]:
    """``base`` (the runner's fresh server) is not used: the population is written into a data directory
    before the server that is measured starts on it (SQLite has one writing process)."""
    all_partners = partners()
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        consents, written = asyncio.run(preload(Path(tmp), people))
        load_s = time.perf_counter() - t0
        with running_server(Path(tmp)) as own, httpx.Client(timeout=60) as client:
            root = own.removesuffix("/fhir")
            total = client.get(f"{own}/Consent?_summary=count").json()["total"]
            assert total == consents, (total, consents)
            recipients = [p["identifiers"][0] for p in all_partners] + [{"system": NPI, "value": "1999999999"}]
            rng = random.Random(7)
            bodies = [decide_body(rng, people, recipients) for _ in range(n_decide + 20)]
            k = iter(range(10**9))

            def one() -> None:
                r = client.post(f"{own}/Consent/$decide", json=bodies[next(k)])
                assert r.status_code == 200, r.text[:500]

            health = latencies(lambda: client.get(f"{root}/health"), n_decide)
            decide = latencies(one, n_decide)
    h50, _ = p50_p95(health)
    d50, d95 = p50_p95(decide)
    return [
        Row("decide: load through the repository", f"{load_s:.0f} s", "",
            f"{consents:,} Consents for {people:,} people; {written:,} resources ({written / load_s:,.0f}/s)"),
        Row("baseline GET /health p50", f"{h50:.2f} ms"),
        Row("$decide p50", f"{d50:.2f} ms", f"{d50 / h50:.1f}x", f"{n_decide} sequential; target ≤ 5 ms"),
        Row("$decide p95", f"{d95:.2f} ms", f"{d95 / h50:.1f}x"),
    ]
