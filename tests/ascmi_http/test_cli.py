"""``fhir-server ascmi import FILE...`` and ``fhir-server ascmi render FORM``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from fhir_server.cli import main
from tests.ascmi_http.support import FORMS, example, names


def _export(data_dir: Path, rtype: str, tmp_path: Path) -> list[dict]:
    out = tmp_path / f"{rtype}.ndjson"
    assert main(["export", "--data-dir", str(data_dir), "--type", rtype, "-o", str(out)]) == 0
    return [json.loads(line) for line in out.read_text().splitlines() if line.strip()]


def test_import_files_forms_and_revocations_and_reports_each_failure(tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "store"
    files = [str(FORMS / f"{n}.json") for n in reversed(names())]  # revocations first: forms still go first
    assert main(["ascmi", "import", "--data-dir", str(data), *files]) == 1
    out, err = capsys.readouterr()
    # revoke-by-consent names the example's own id (Consent/named-include-exclude), unknown here.
    failures = [line for line in err.splitlines() if ": 4" in line]
    assert len(failures) == 1 and "revoke-by-consent.json: 404" in failures[0]
    assert "Consent/named-include-exclude is not on file" in failures[0]
    assert len([line for line in out.splitlines() if "/_history/" in line]) == len(names()) - 1
    assert f"{len(names()) - 1} imported, 1 failed" in err
    consents = _export(data, "Consent", tmp_path)
    revoked = [c for c in consents if c.get("identifier", [{}])[0].get("value") == "GPHP-2025-000183"]
    assert [c["status"] for c in revoked] == ["inactive"]


def test_importing_the_same_forms_again_adds_no_patient_or_organization(tmp_path: Path,
                                                                        capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "store"
    forms = [str(FORMS / f"{n}.json") for n in names("form")]
    assert main(["ascmi", "import", "--data-dir", str(data), *forms]) == 0
    patients, orgs = len(_export(data, "Patient", tmp_path)), len(_export(data, "Organization", tmp_path))
    assert main(["ascmi", "import", "--data-dir", str(data), *forms, *forms]) == 0  # 16 files: a progress bar
    assert (len(_export(data, "Patient", tmp_path)), len(_export(data, "Organization", tmp_path))) == (patients, orgs)
    capsys.readouterr()


def test_import_reports_invalid_and_unreadable_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = example("share-nothing")
    del bad["individual"]["birthDate"]
    (tmp_path / "bad.json").write_text(json.dumps(bad))
    (tmp_path / "junk.json").write_text("{not json")
    code = main(["ascmi", "import", "--data-dir", str(tmp_path / "store"), str(tmp_path / "bad.json"),
                 str(tmp_path / "junk.json"), str(tmp_path / "missing.json")])
    assert code == 1
    err = capsys.readouterr().err
    assert "bad.json: 422 $.individual.birthDate: birthDate is required" in err
    assert "junk.json: cannot read: not JSON" in err
    assert "missing.json: cannot read" in err


def test_render_prints_the_plain_language_text(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ascmi", "render", str(FORMS / "named-include-exclude.json")]) == 0
    out = capsys.readouterr().out
    assert out.startswith("ASCMI AB 133 signed 2025-04-12")
    assert "Never with: Redwood County Department of Social Services." in out


def test_render_of_an_invalid_form_exits_1_with_the_diagnostics(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    bad = example("ab133-all-share")
    del bad["individual"]["mediCalId"]
    (tmp_path / "bad.json").write_text(json.dumps(bad))
    assert main(["ascmi", "render", str(tmp_path / "bad.json")]) == 1
    assert "$.individual.mediCalId" in capsys.readouterr().err


def test_the_installed_command_renders_a_form() -> None:
    command = Path(sys.executable).with_name("fhir-server")
    done = subprocess.run([str(command), "ascmi", "render", str(FORMS / "share-nothing.json")],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert "Nothing may be shared on the strength of this form." in done.stdout
