"""The README's newcomer steps, run as written against a real ``fhir-server serve`` process: make a key pair
with openssl, register it, get a token with ``fhir-server token``, call the API; and ``token --admin``."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.conftest import STORE
from tests.ops.server import running, store_env

FHIR_SERVER = str(Path(sys.executable).with_name("fhir-server"))


def _run(args: list[str], env: dict[str, str], cwd: Path) -> str:
    done = subprocess.run(args, env=env, cwd=cwd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
def test_readme_steps_work_against_a_running_server(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    mongo_uri = request.getfixturevalue("mongo_uri") if STORE == "mongo" else None
    env = {**os.environ, "FHIR_AUTH": "smart", "FHIR_LOAD_CONFORMANCE": "false",
           **store_env(STORE, mongo_uri, f"newcomer_{os.getpid()}")}
    data = ["--data-dir", str(tmp_path / "data")]
    with running(tmp_path / "data", tmp_path / "server.log", env=env) as server:
        assert "fhir-server token --admin" in server.log()
        admin = _run([FHIR_SERVER, "token", "--admin", *data], env, tmp_path).strip()
        assert httpx.get(f"{server.base}/Patient", headers={"Authorization": f"Bearer {admin}"}).status_code == 200
        assert httpx.get(f"{server.base}/Patient").status_code == 401

        _run(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384", "-out",
              "client-key.pem"], env, tmp_path)
        _run(["openssl", "pkey", "-in", "client-key.pem", "-pubout", "-out", "client-pub.pem"], env, tmp_path)
        made = json.loads(_run([FHIR_SERVER, "clients", "add", "--organization", "Organization/123", "--jwks",
                                "client-pub.pem", "--scope", "system/Patient.rs", "--scope", "system/Consent.rs",
                                "--purpose", "TREAT", *data], env, tmp_path))
        token = _run([FHIR_SERVER, "token", "--client-id", made["client_id"], "--key", "client-key.pem",
                      "--scope", "system/Patient.rs", "--url", server.base], env, tmp_path).strip()
        headers = {"Authorization": f"Bearer {token}"}
        assert httpx.get(f"{server.base}/Patient", headers=headers).status_code == 200
        assert httpx.get(f"{server.base}/Consent", headers=headers).status_code == 403  # not asked for

        _run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", "rsa.pem"],
             env, tmp_path)
        _run(["openssl", "pkey", "-in", "rsa.pem", "-pubout", "-out", "rsa-pub.pem"], env, tmp_path)
        rsa = json.loads(_run([FHIR_SERVER, "clients", "add", "--admin", "--jwks", "rsa-pub.pem", *data], env,
                              tmp_path))
        token = _run([FHIR_SERVER, "token", "--client-id", rsa["client_id"], "--key", "rsa.pem", "--url",
                      server.base], env, tmp_path).strip()
        assert httpx.get(f"{server.base}/Observation", headers={"Authorization": f"Bearer {token}"}
                         ).status_code == 200


def test_readme_person_steps_work_against_a_running_server(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    """``fhir-server users add`` (password on standard input), then the web page's sign-in against a real server
    process, as a browser does it: login page, form with its cookie, redirect, code exchange, an API call."""
    from tests.security.signin_helpers import PASSWORD, Pkce, authorize_params, csrf_of, query_of

    mongo_uri = request.getfixturevalue("mongo_uri") if STORE == "mongo" else None
    env = {**os.environ, "FHIR_AUTH": "smart", "FHIR_LOAD_CONFORMANCE": "false",
           **store_env(STORE, mongo_uri, f"newcomer_people_{os.getpid()}")}
    data = ["--data-dir", str(tmp_path / "data")]
    with running(tmp_path / "data", tmp_path / "server.log", env=env) as server:
        assert "fhir-server users add" in server.log()
        done = subprocess.run([FHIR_SERVER, "users", "add", "ana", "--organization", "Organization/123",
                               "--password-stdin", *data], input=PASSWORD + "\n", env=env, cwd=tmp_path,
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["organization"] == "Organization/123"
        origin = server.base.removesuffix("/fhir")
        pkce = Pkce.make()
        params = authorize_params(pkce, redirect_uri=f"{origin}/app/", aud=server.base)
        with httpx.Client(base_url=origin, timeout=60) as browser:
            page = browser.get("/fhir/auth/authorize", params=params)
            assert page.status_code == 200, page.text
            r = browser.post("/fhir/auth/authorize", data={**params, "username": "ana", "password": PASSWORD,
                                                           "csrf_token": csrf_of(page.text)})
            assert r.status_code == 302, r.text
            code = query_of(r.headers["location"])["code"]
            r = browser.post("/fhir/auth/token", data={
                "grant_type": "authorization_code", "code": code, "redirect_uri": f"{origin}/app/",
                "client_id": "ascmi-care-partner-app", "code_verifier": pkce.verifier})
            assert r.status_code == 200, r.text
            headers = {"Authorization": f"Bearer {r.json()['access_token']}"}
            assert browser.get("/fhir/Patient", headers=headers).status_code == 200
            assert browser.post("/fhir/auth/logout", headers=headers).status_code == 204
            assert browser.get("/fhir/Patient", headers=headers).status_code == 401
