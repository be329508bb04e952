"""``fhir-server validate FILE... [--profile URL]``: the ``$validate`` engine on files, offline, as a process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx

from fhir_server.app import create_app
from fhir_server.conformance.offline import validate_files
from fhir_server.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "forms" / "ab133-all-share.bundle.json"
PROFILE = "https://ascmi.example.org/fhir/StructureDefinition/ASCMIConsent"
SCOPE = "http://terminology.hl7.org/CodeSystem/consentscope"


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    command = Path(sys.executable).with_name("fhir-server")
    return subprocess.run([str(command), "validate", *args], capture_output=True, text=True, timeout=120)


def _consent(**fields: Any) -> dict[str, Any]:
    return {"resourceType": "Consent", "id": "c1", "status": "active",
            "scope": {"coding": [{"system": SCOPE, "code": "patient-privacy"}]},
            "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
            "policyRule": {"text": "HIPAA"}, **fields}


def _write(path: Path, value: Any) -> str:
    path.write_text(json.dumps(value))
    return str(path)


def test_a_valid_bundle_exits_0_and_names_each_entry() -> None:
    result = _run(str(EXAMPLE))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{EXAMPLE}#entry[0] (Patient)" in result.stdout
    assert "with errors" in result.stdout.splitlines()[-1] and " 0 with errors" in result.stdout


def test_errors_are_printed_per_resource_and_exit_non_zero(tmp_path: Path) -> None:
    bad = _consent(scope={"coding": [{"system": SCOPE, "code": "bogus"}]})
    del bad["status"]
    result = _run(_write(tmp_path / "bad.json", bad))
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"{tmp_path / 'bad.json'} (Consent/c1): 2 error(s)")
    assert any("error [required] Consent.status" in line for line in lines)
    assert any("error [code-invalid] Consent.scope.coding[0]" in line and "bogus" in line for line in lines)
    assert sum("Consent.status" in line for line in lines) == 1  # one cause, one issue


def test_ndjson_lines_are_validated_one_by_one(tmp_path: Path) -> None:
    path = tmp_path / "data.ndjson"
    path.write_text(json.dumps(_consent()) + "\n\n" + json.dumps({"resourceType": "Patient", "gender": "x"}) + "\n"
                    + "{not json\n")
    result = _run(str(path))
    assert result.returncode == 1
    assert f"{path}:1 (Consent/c1): " in result.stdout
    assert f"{path}:3 (Patient): 1 error(s)" in result.stdout
    assert f"{path}:4: 1 error(s)" in result.stdout and "not JSON" in result.stdout
    assert "3 resource(s) checked, 2 with errors" in result.stdout


def test_profile_option_validates_against_a_held_profile(tmp_path: Path) -> None:
    path = _write(tmp_path / "plain.json", _consent())
    assert _run(path).returncode == 0
    result = _run(path, "--profile", PROFILE)
    assert result.returncode == 1
    assert "error [required]" in result.stdout  # ASCMIConsent requires what a plain Consent lacks


def test_a_missing_file_is_an_error_not_a_crash(tmp_path: Path) -> None:
    result = _run(str(tmp_path / "nope.json"))
    assert result.returncode == 1 and "cannot read" in result.stdout and "Traceback" not in result.stderr


async def test_the_same_engine_as_validate_over_http(tmp_path: Path) -> None:
    resource = _consent(scope={"coding": [{"system": SCOPE, "code": "bogus"}]}, patient={"display": "x"})
    del resource["policyRule"]
    app = create_app(Settings(data_dir=tmp_path, auth="off"))
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
            response = await client.post(f"/fhir/Consent/$validate?profile={PROFILE}", json=resource)
    over_http = [(i["severity"], i["code"], i.get("expression"), i["diagnostics"])
                 for i in response.json()["issue"] if i["severity"] != "information"]
    out = tmp_path / "out.txt"
    with out.open("w") as fh:
        validate_files([Path(_write(tmp_path / "r.json", resource))], [PROFILE], Settings().canonical_base, fh)
    printed = out.read_text()
    assert over_http
    for severity, code, expression, diagnostics in over_http:
        assert f"  {severity} [{code}] {', '.join(expression or [])}: {diagnostics}" in printed
    assert len([line for line in printed.splitlines() if line.startswith("  ")]) == len(over_http)
