"""Structured logs of a real server process: JSON lines, request ids, and no PHI.

The run sends names, birth dates, addresses and identifiers in bodies, query strings and failing requests, then
greps everything the process wrote for them.
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from tests.ops.server import running

FAMILY, GIVEN = "Quintessa", "Marlowe-Vantongeren"
MRN, CIN_VALUE, PHONE = "MRN-88127731", "93417725K", "(707) 555-0199"
SECRETS = [FAMILY, GIVEN, MRN, CIN_VALUE, PHONE, "1961-07-13", "4417 Juniper Hollow"]


def test_logs_are_json_with_request_ids_and_carry_no_phi(tmp_path: Path) -> None:
    log_path = tmp_path / "server.log"
    with running(tmp_path / "data", log_path) as server, httpx.Client(timeout=30) as http:
        base = server.base
        person = {"resourceType": "Patient", "name": [{"family": FAMILY, "given": [GIVEN]}],
                  "birthDate": "1961-07-13", "identifier": [{"system": "https://example.org/mrn", "value": MRN}],
                  "telecom": [{"system": "phone", "value": PHONE}],
                  "address": [{"line": ["4417 Juniper Hollow"], "city": "Eureka"}]}
        created = http.post(f"{base}/Patient", json=person, headers={"X-Request-ID": "phi-test-create"})
        assert created.status_code == 201
        assert created.headers["x-request-id"] == "phi-test-create"
        assert http.get(f"{base}/Patient?family={FAMILY}&identifier={MRN}").status_code == 200
        assert http.get(f"{base}/Patient?name:exact={GIVEN}&birthdate=1961-07-13").status_code == 200
        # failures that quote the input back to the client: none of it may reach the log
        assert http.post(f"{base}/Patient", json={**person, "gender": FAMILY}).status_code in (400, 422)
        assert http.post(f"{base}/Patient", content=f'{{"resourceType": "Patient", "name": "{FAMILY}'.encode(),
                         headers={"Content-Type": "application/fhir+json"}).status_code == 400
        assert http.get(f"{base}/Patient?{FAMILY}=x", headers={"Prefer": "handling=strict"}).status_code == 400
        assert http.get(f"{base}/Patient/{MRN}").status_code == 404
        form = {"formType": "AB133", "formVersion": "2025.1", "formId": f"F-{MRN}", "signedDate": "2026-01-15",
                "individual": {"givenName": GIVEN, "familyName": FAMILY, "birthDate": "1961-07-13",
                               "mediCalId": CIN_VALUE, "phone": PHONE},
                "collector": {"name": "Log Test Clinic", "type": "provider", "coveredEntity": True,
                              "identifiers": [{"system": "http://hl7.org/fhir/sid/us-npi", "value": "1300000009"}]},
                "recipients": {"allCarePartners": True}, "purposes": ["TREAT"],
                "categories": {"general-health": "share"}, "expiration": {"date": "2030-01-01"},
                "signature": {"signer": "individual", "method": "electronic", "date": "2026-01-15"},
                "acknowledgements": {"rightToRevoke": True, "redisclosureNotice": True, "noConditioning": True,
                                     "copyReceived": True}}
        assert http.post(f"{server.root}/ascmi/forms", json=form).status_code in (200, 201)
        assert http.post(f"{server.root}/ascmi/forms", json={**form, "signedDate": FAMILY}).status_code >= 400
        server.stop()
    text = log_path.read_text()
    for secret in SECRETS:
        assert secret not in text, f"{secret!r} leaked into the log"
    entries = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    other = [line for line in text.splitlines() if line and not line.startswith("{") and
             not line.startswith("FHIR base:")]
    assert not other, other[:5]
    access = [e for e in entries if e["logger"] == "fhir_server.access"]
    assert len(access) >= 9
    assert all(e["request_id"] and e["route"] and e["status"] and "duration_ms" in e for e in access)
    assert {"route": "/fhir/{rtype}", "status": 201, "request_id": "phi-test-create"}.items() <= \
        next(e for e in access if e["request_id"] == "phi-test-create").items()
