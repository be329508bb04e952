"""``fhir-server clients add|list|disable`` and ``fhir-server token --admin`` against a real store file, then the
token used over HTTP on an app opened on the same data directory."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import pytest

from fhir_server.app import create_app
from fhir_server.cli import main
from fhir_server.settings import Settings
from tests.security.conftest import Key


@pytest.fixture(autouse=True)
def _embedded_store(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MONGODB_URI", raising=False)  # the CLI opens the store serve would: SQLite here
    monkeypatch.setenv("FHIR_LOAD_CONFORMANCE", "false")


def _get(data_dir: Path, token: str, path: str = "/fhir/Patient") -> int:
    async def run() -> int:
        app = create_app(Settings(data_dir=data_dir, load_conformance=False, auth="smart"))
        async with app.router.lifespan_context(app):
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as c:
                return (await c.get(path, headers={"Authorization": f"Bearer {token}"})).status_code

    return asyncio.run(run())


def test_clients_add_list_disable(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps(Key.make("ES384").jwks()))
    d = str(tmp_path)
    assert main(["clients", "add", "--organization", "Organization/cp1", "--jwks", str(jwks), "--scope",
                 "system/Patient.rs", "--purpose", "TREAT", "--data-dir", d]) == 0
    made = json.loads(capsys.readouterr().out)
    assert made["organization"] == "Organization/cp1" and made["scopes"] == ["system/Patient.rs"]
    assert main(["clients", "add", "--admin", "--jwks", str(jwks), "--data-dir", d]) == 0
    admin = json.loads(capsys.readouterr().out)
    assert admin["organization"] is None and admin["scopes"] == ["system/*.cruds"]
    assert main(["clients", "list", "--data-dir", d]) == 0
    listed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert {c["client_id"] for c in listed} == {made["client_id"], admin["client_id"]}
    assert main(["clients", "disable", made["client_id"], "--data-dir", d]) == 0
    assert json.loads(capsys.readouterr().out)["active"] is False
    assert main(["clients", "disable", "nobody", "--data-dir", d]) == 1


def test_clients_add_refuses_weak_keys_and_unknown_purposes(tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    weak = tmp_path / "weak.json"
    weak.write_text(json.dumps(Key.make("RS384", 1024).jwks()))
    assert main(["clients", "add", "--admin", "--jwks", str(weak), "--data-dir", str(tmp_path)]) == 1
    assert "2048" in capsys.readouterr().err
    good = tmp_path / "good.json"
    good.write_text(json.dumps(Key.make().jwks()))
    assert main(["clients", "add", "--organization", "Organization/x", "--jwks", str(good), "--scope",
                 "system/*.rs", "--purpose", "ETREAT", "--data-dir", str(tmp_path)]) == 1
    assert "ascmi-purpose" in capsys.readouterr().err


def test_token_admin_works_against_the_server(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["token", "--admin", "--data-dir", str(tmp_path)]) == 0
    token = capsys.readouterr().out.strip()
    assert _get(tmp_path, token) == 200
    assert _get(tmp_path, token, "/admin/clients") == 200
    assert main(["clients", "disable", "local-administrator", "--data-dir", str(tmp_path)]) == 0
    assert _get(tmp_path, token) == 401


def test_client_ids_never_look_like_command_line_options() -> None:
    """A client_id starting with '-' could not be passed to ``fhir-server clients disable`` (argparse reads it as
    an option); token_urlsafe starts one in 64 with '-'."""
    from fhir_server.security.clients import new_client

    ids = [new_client({"keys": []}, organization=None, keys_required=False).client_id for _ in range(2000)]
    assert not [i for i in ids if i.startswith("-")]
