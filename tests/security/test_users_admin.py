"""``fhir-server users add|list|disable|enable|passwd`` against a real store file, then a sign-in over HTTP on an
app opened on the same data directory; and the administrators' HTTP API ``/admin/users``."""

from __future__ import annotations

import asyncio
import io
import json
from pathlib import Path

import httpx
import pytest

from fhir_server.app import create_app
from fhir_server.cli import main
from fhir_server.settings import Settings
from tests.security.conftest import Secure, bearer
from tests.security.signin_helpers import PASSWORD, Pkce, authorize_params, sign_in, submit


@pytest.fixture(autouse=True)
def _embedded_store(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MONGODB_URI", raising=False)  # the CLI opens the store serve would: SQLite here
    monkeypatch.setenv("FHIR_LOAD_CONFORMANCE", "false")


def _users(monkeypatch: pytest.MonkeyPatch, args: list[str], stdin: str = "") -> int:
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    return main(["users", *args])


def _sign_in_status(data_dir: Path, username: str, password: str) -> int:
    """302 when the sign-in works, 200 (the form again) when it does not."""
    async def run() -> int:
        app = create_app(Settings(data_dir=data_dir, load_conformance=False, auth="smart"))
        async with app.router.lifespan_context(app):
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as c:
                return (await submit(c, authorize_params(Pkce.make()), username, password)).status_code

    return asyncio.run(run())


def test_users_add_list_disable_enable_passwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    d = ["--data-dir", str(tmp_path)]
    assert _users(monkeypatch, ["add", "Ana", "--organization", "Organization/cp1", "--display", "Ana López",
                                "--password-stdin", *d], PASSWORD + "\n") == 0
    added = json.loads(capsys.readouterr().out)
    assert added["username"] == "ana" and added["organization"] == "Organization/cp1"
    assert added["scopes"] == ["user/*.cruds"] and added["purposes"] == ["TREAT"]
    assert "password_hash" not in added and PASSWORD not in json.dumps(added)
    assert _users(monkeypatch, ["add", "ana", "--admin", "--password-stdin", *d], PASSWORD + "\n") == 1
    assert "exists" in capsys.readouterr().err
    assert _users(monkeypatch, ["add", "bo", "--admin", "--password-stdin", *d], "short\n") == 1
    assert "at least 8" in capsys.readouterr().err
    assert _users(monkeypatch, ["list", *d]) == 0
    [listed] = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert listed["username"] == "ana" and "password_hash" not in listed
    assert _sign_in_status(tmp_path, "ana", PASSWORD) == 302

    assert _users(monkeypatch, ["disable", "ana", *d]) == 0
    assert _sign_in_status(tmp_path, "ana", PASSWORD) == 200
    assert _users(monkeypatch, ["enable", "ana", *d]) == 0
    assert _users(monkeypatch, ["passwd", "ana", "--password-stdin", *d], "a new long password\n") == 0
    assert _sign_in_status(tmp_path, "ana", PASSWORD) == 200
    assert _sign_in_status(tmp_path, "ana", "a new long password") == 302
    assert _users(monkeypatch, ["disable", "nobody", *d]) == 1


def test_password_is_never_an_argument(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["users", "add", "ana", "--admin", "--password", PASSWORD, "--data-dir", str(tmp_path)])
    # without --password-stdin and without a terminal, the command says how to pass it
    assert _users(monkeypatch, ["add", "ana", "--admin", "--data-dir", str(tmp_path)]) == 1
    assert "--password-stdin" in capsys.readouterr().err


async def test_admin_api_manages_users_and_only_administrators_may(secure: Secure) -> None:
    admin = bearer(await secure.admin_token())
    body = {"username": "cy", "password": PASSWORD, "organization": "Organization/cp1", "display": "Cy"}
    r = await secure.client.post("/admin/users", json=body, headers=admin)
    assert r.status_code == 201, r.text
    assert r.json()["username"] == "cy" and "password_hash" not in r.json()
    assert (await secure.client.post("/admin/users", json=body, headers=admin)).status_code == 409
    bad = await secure.client.post("/admin/users", json={**body, "username": "x y"}, headers=admin)
    assert bad.status_code == 400 and bad.json()["resourceType"] == "OperationOutcome"
    listed = (await secure.client.get("/admin/users", headers=admin)).json()
    assert [u["username"] for u in listed] == ["cy"] and "password_hash" not in listed[0]
    staff = bearer((await sign_in(secure.client, "cy"))["access_token"])
    r = await secure.client.get("/admin/users", headers=staff)
    assert r.status_code == 403 and r.json()["issue"][0]["code"] == "forbidden"
    assert (await secure.client.post("/admin/users/cy/disable", headers=admin)).json()["active"] is False
    assert (await secure.client.get("/fhir/Patient", headers=staff)).status_code == 401
    assert (await secure.client.post("/admin/users/cy/enable", headers=admin)).json()["active"] is True
    r = await secure.client.post("/admin/users/cy/password", json={"password": "another password"}, headers=admin)
    assert r.status_code == 200
    assert (await secure.client.get("/admin/users/nobody", headers=admin)).status_code == 404
    await sign_in(secure.client, "cy", "another password")
