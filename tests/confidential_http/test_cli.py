"""``fhir-server ascmi confidential-communications import``, ``ascmi overdue`` and ``ascmi render REQUEST``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fhir_server.cli import main
from tests.confidential_http.support import EXAMPLES, example


def test_import_files_requests_then_withdrawals_and_overdue_lists_them_per_care_partner(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "store"
    files = sorted(str(p) for p in EXAMPLES.glob("*.json"))  # the withdrawal sorts first: it still goes last
    assert main(["ascmi", "confidential-communications", "import", "--data-dir", str(data), *files]) == 0
    out, err = capsys.readouterr()
    assert "6 imported, 0 failed" in err
    assert len([line for line in out.splitlines() if "Consent/" in line]) == 6

    assert main(["ascmi", "overdue", "--data-dir", str(data), "--date", "2026-12-19"]) == 0
    report = capsys.readouterr().out
    assert "3 confidential communications Task(s) past their due date (today is 2026-12-19)" in report
    assert "Golden Poppy Health Plan (Organization/" in report and ": 2 overdue" in report
    assert "Sierra Vista Community Clinic (Organization/" in report and ": 1 overdue" in report
    assert "due 2026-12-18 (1 days late)" in report  # the mailed request of Friday 2026-12-04

    assert main(["ascmi", "overdue", "--data-dir", str(data), "--date", "2026-12-08"]) == 0
    assert "No confidential communications request is past its due date" in capsys.readouterr().out
    assert main(["ascmi", "overdue", "--data-dir", str(data), "--date", "soon"]) == 2


def test_import_reports_each_failure_and_goes_on(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = example("mail")
    bad["receivedVia"] = "fax"
    (tmp_path / "bad.json").write_text(json.dumps(bad))
    (tmp_path / "junk.json").write_text("{")
    code = main(["ascmi", "confidential-communications", "import", "--data-dir", str(tmp_path / "store"),
                 str(tmp_path / "bad.json"), str(tmp_path / "junk.json"), str(EXAMPLES / "phone.json")])
    assert code == 1
    err = capsys.readouterr().err
    assert "bad.json: 422 $.receivedVia: 'fax' is not one of electronic, phone, mail" in err
    assert "junk.json: cannot read: not JSON" in err
    assert "1 imported, 2 failed" in err


def test_render_describes_a_request_in_plain_language(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ascmi", "render", str(EXAMPLES / "mail.json")]) == 0
    text = capsys.readouterr().out
    assert "received by Golden Poppy Health Plan by first-class mail on Friday 2026-12-04" in text
    assert "mail to PO Box 2231, Arcata, CA 95518" in text
    assert "Never to the subscriber" in text
    assert "until Friday 2026-12-18 (14 calendar days after receipt)" in text


def test_render_reports_an_invalid_request(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = example("phone")
    bad["designated"] = {}
    (tmp_path / "bad.json").write_text(json.dumps(bad))
    assert main(["ascmi", "render", str(tmp_path / "bad.json")]) == 1
    assert "$.designated: designate at least one contact" in capsys.readouterr().err
