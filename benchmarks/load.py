"""A realistic consent data set, loaded through transaction Bundles over HTTP.

2,000 Organizations, 20,000 Patients and 100,000 Consents (5 per patient) at the default scale. Organizations
go in first (PUT with known ids); then each Bundle carries ~83 patients as ``POST`` entries with ``urn:uuid``
full URLs and their five Consents referring to them, so the server resolves the references as an ASCMI intake
would. Everything random comes from one seeded generator, so two runs load the same data.

``python -m benchmarks.load DATA_DIR [scale]`` loads into a data directory (for profiling searches by hand).
"""

from __future__ import annotations

import json
import random
import sys
import time
import uuid
from dataclasses import asdict, dataclass, field
from typing import Any

import httpx

SYLLABLES = ("an", "ber", "cal", "dor", "el", "fen", "gar", "hol", "ir", "jan", "kol", "lum", "mar", "nor",
             "ost", "pal", "quin", "ros", "sel", "tor", "ul", "var", "wes", "xan", "yor", "zel")
ORG_WORDS = ("Health", "Clinic", "Medical", "Care", "Hospital", "Family", "Community", "Regional", "Pediatric",
             "Dental", "Mental", "Wellness", "Heart", "Valley", "River", "Lake", "North", "South", "East", "West")
PURPOSES = ("TREAT", "ETREAT", "HPAYMT", "HOPERAT", "HRESCH", "PUBHLTH", "HMARKT", "CAREMGT")
STATUSES = ("active",) * 16 + ("inactive", "inactive", "rejected", "draft")  # 80 % active
ACT_REASON = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
MRN = "urn:oid:2.16.840.1.113883.3.4.5.6"
NPI = "http://hl7.org/fhir/sid/us-npi"


@dataclass
class DataSet:
    """What was loaded: the ids and values the search workload draws its random parameters from."""

    patients: list[str] = field(default_factory=list)  # server-assigned ids
    mrns: list[str] = field(default_factory=list)
    families: list[str] = field(default_factory=list)
    orgs: list[str] = field(default_factory=list)
    org_words: list[str] = field(default_factory=list)
    resources: int = 0
    seconds: float = 0.0

    @property
    def rate(self) -> float:
        return self.resources / self.seconds if self.seconds else 0.0


def family_name(rng: random.Random) -> str:
    return "".join(rng.choice(SYLLABLES) for _ in range(3)).capitalize()


def organization(i: int, rng: random.Random) -> dict[str, Any]:
    words = rng.sample(ORG_WORDS, 2)
    return {"resourceType": "Organization", "id": f"org{i}", "active": True,
            "identifier": [{"system": NPI, "value": f"{1_000_000_000 + i}"}],
            "name": f"{family_name(rng)} {words[0]} {words[1]} {i}",
            "address": [{"city": family_name(rng) + "ville", "state": "CA", "country": "US"}]}


def patient(i: int, family: str, rng: random.Random) -> dict[str, Any]:
    return {"resourceType": "Patient", "identifier": [{"system": MRN, "value": f"MRN{i:07d}"}],
            "name": [{"family": family, "given": [rng.choice(("Ana", "Ben", "Chloe", "Dev", "Eli", "Fay"))]}],
            "gender": rng.choice(("female", "male")),
            "birthDate": f"{rng.randint(1930, 2020)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"}


def consent(patient_ref: str, org: str, actor: str, rng: random.Random) -> dict[str, Any]:
    start_year = rng.randint(2012, 2026)
    start = f"{start_year}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
    end = f"{start_year + rng.randint(1, 5)}{start[4:]}"
    return {
        "resourceType": "Consent", "status": rng.choice(STATUSES),
        "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope",
                              "code": "patient-privacy"}]},
        "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
        "patient": {"reference": patient_ref}, "dateTime": start,
        "organization": [{"reference": f"Organization/{org}"}],
        "policyRule": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                                   "code": "OPTIN"}]},
        "provision": {
            "type": "permit", "period": {"start": start, "end": end},
            "actor": [{"role": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
                                            "code": "IRCP"}]},
                       "reference": {"reference": f"Organization/{actor}"}}],
            "purpose": [{"system": ACT_REASON, "code": p} for p in rng.sample(PURPOSES, rng.randint(1, 2))],
        },
    }


def _post(client: httpx.Client, base: str, entries: list[dict[str, Any]]) -> dict[str, Any]:
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": entries}
    r = client.post(base, json=bundle, headers={"Prefer": "return=minimal"})
    if r.status_code != 200:
        raise RuntimeError(f"transaction failed: {r.status_code} {r.text[:500]}")
    return r.json()  # type: ignore[no-any-return]


def load(base: str, patients: int = 20_000, orgs: int = 2_000, consents_per_patient: int = 5,
         bundle_size: int = 500, seed: int = 4, log: bool = True) -> DataSet:
    rng = random.Random(seed)
    data = DataSet(orgs=[f"org{i}" for i in range(orgs)])
    families = [family_name(rng) for _ in range(max(1, patients // 20))]  # ~20 patients per family name
    org_resources = [organization(i, rng) for i in range(orgs)]
    data.org_words = sorted({w.lower() for o in org_resources for w in o["name"].split()[:1]})
    per_group = 1 + consents_per_patient
    groups = max(1, bundle_size // per_group)
    t0 = time.perf_counter()
    with httpx.Client(timeout=300) as client:
        for start in range(0, orgs, bundle_size):
            _post(client, base, [{"resource": o, "request": {"method": "PUT", "url": f"Organization/{o['id']}"}}
                                 for o in org_resources[start : start + bundle_size]])
        data.resources += orgs
        for start in range(0, patients, groups):
            entries: list[dict[str, Any]] = []
            for i in range(start, min(patients, start + groups)):
                full = f"urn:uuid:{uuid.UUID(int=rng.getrandbits(128), version=4)}"
                family = rng.choice(families)
                entries.append({"fullUrl": full, "resource": patient(i, family, rng),
                                "request": {"method": "POST", "url": "Patient"}})
                entries += [{"resource": consent(full, rng.choice(data.orgs), rng.choice(data.orgs), rng),
                             "request": {"method": "POST", "url": "Consent"}}
                            for _ in range(consents_per_patient)]
                data.mrns.append(f"MRN{i:07d}")
                data.families.append(family)
            response = _post(client, base, entries)
            for entry in response["entry"][::per_group]:
                location = entry["response"]["location"]  # Patient/<id>/_history/1
                data.patients.append(location.split("/")[1])
            data.resources += len(entries)
            if log and (start // groups) % 20 == 0:
                done = data.resources
                print(f"  loaded {done} resources, {done / (time.perf_counter() - t0):.0f}/s",
                      file=sys.stderr, flush=True)
    data.seconds = time.perf_counter() - t0
    return data


if __name__ == "__main__":  # pragma: no cover - a manual tool
    from pathlib import Path

    from benchmarks.server import running_server

    scale = float(sys.argv[2]) if len(sys.argv) > 2 else 1.0
    data_dir = Path(sys.argv[1])
    with running_server(data_dir) as base:
        ds = load(base, patients=int(20_000 * scale), orgs=int(2_000 * scale))
    (data_dir / "dataset.json").write_text(json.dumps(asdict(ds)))
    print(f"{ds.resources} resources in {ds.seconds:.1f} s: {ds.rate:.0f}/s")
