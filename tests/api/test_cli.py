"""``fhir-server serve --host --port --data-dir``: a real process whose FHIR base is http://HOST:PORT/fhir."""

from __future__ import annotations

from pathlib import Path

import httpx

from fhir_server.cli import build_parser
from tests.api.support import fhir_server_process, patient


def test_serve_arguments_are_parsed() -> None:
    args = build_parser().parse_args(["serve", "--host", "0.0.0.0", "--port", "9999", "--data-dir", "/tmp/x"])
    assert (args.command, args.host, args.port, args.data_dir) == ("serve", "0.0.0.0", 9999, "/tmp/x")


def test_serve_starts_a_server_at_host_port_fhir_with_its_store_in_data_dir(tmp_path: Path) -> None:
    data_dir = tmp_path / "store"
    with fhir_server_process(data_dir) as base:
        statement = httpx.get(f"{base}/metadata").json()
        assert statement["implementation"]["url"] == base
        assert statement["fhirVersion"] == "4.0.1"
        created = httpx.post(f"{base}/Patient", json=patient())
        assert created.status_code == 201
        assert created.headers["location"].startswith(f"{base}/Patient/")
        assert httpx.get(created.headers["location"]).json() == created.json()
        assert httpx.get(base.removesuffix("/fhir") + "/Patient").status_code == 404
    assert (data_dir / "fhir.sqlite3").exists()


def test_data_survives_a_restart(tmp_path: Path) -> None:
    with fhir_server_process(tmp_path) as base:
        rid = httpx.post(f"{base}/Patient", json=patient()).json()["id"]
    with fhir_server_process(tmp_path) as base:
        assert httpx.get(f"{base}/Patient/{rid}").status_code == 200
