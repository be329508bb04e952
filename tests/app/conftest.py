"""The Care Partner page in a real browser: Debian's Chromium driven by Playwright against a real ``fhir-server
serve`` process (auth on) on the suite's store, with real keys and real tokens.

Staff sign in for real: a user of the Care Partner Organization is added with ``fhir-server users add`` before
the server starts, and each test signs in through the page (SMART standalone launch: the server's login page,
authorization code + PKCE, code exchange), so everything the page then does goes through the same API and gate as
any client. Screenshots go to ``build/test-artifacts/app/`` (gitignored).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import STORE
from tests.ops.server import ServerProcess, store_env
from tests.security.conftest import Key, claims, form, secure  # noqa: F401 - the in-process app fixture

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ARTIFACTS = Path(__file__).resolve().parents[2] / "build" / "test-artifacts" / "app"
CANONICAL = "https://ascmi.example.org/fhir"
NPI = "http://hl7.org/fhir/sid/us-npi"
CLINIC = {"id": "cp1", "name": "Sunrise Community Clinic", "npi": "1999999992", "type": "provider"}
PLAN = {"id": "cp2", "name": "Golden Poppy Health Plan", "npi": "1456781230", "type": "health-plan"}
USERNAME, PASSWORD = "frontdesk", "correct horse battery staple 19"


def organization(org: dict[str, str]) -> dict[str, Any]:
    return {"resourceType": "Organization", "id": org["id"], "active": True, "name": org["name"],
            "identifier": [{"system": NPI, "value": org["npi"]}],
            "type": [{"coding": [{"system": f"{CANONICAL}/CodeSystem/care-partner-type", "code": org["type"]}]}],
            "extension": [{"url": f"{CANONICAL}/StructureDefinition/covered-entity", "valueBoolean": True}]}


def chromium_missing() -> str | None:
    if not CHROMIUM.exists():
        return "Debian's Chromium (/usr/bin/chromium) is not installed: `apt-get install -y chromium`"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed (pip install -e '.[test]')"
    return None


@dataclass
class AppServer:
    """The running server, an administrator token and the Care Partner client the page acts for."""

    process: ServerProcess
    admin: str

    @property
    def root(self) -> str:
        return self.process.root

    def token(self, key: Key, client_id: str, scope: str) -> dict[str, Any]:
        assertion = key.sign(claims(client_id, aud=f"{self.root}/fhir/auth/token"))
        r = httpx.post(f"{self.root}/fhir/auth/token", data=form(assertion, scope), timeout=60)
        assert r.status_code == 200, r.text
        return dict(r.json())

    def api(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.admin}", **kwargs.pop("headers", {})}
        return httpx.request(method, f"{self.root}{path}", headers=headers, timeout=60, **kwargs)


def _cli(env: dict[str, str], *args: str, stdin: str | None = None) -> str:
    command = Path(sys.executable).with_name("fhir-server")
    out = subprocess.run([str(command), *args], env=env, input=stdin, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout


def _register(env: dict[str, str], data_dir: Path, key: Key, *extra: str) -> str:
    jwks = data_dir.parent / f"{key.kid}.jwks.json"
    jwks.write_text(json.dumps(key.jwks()))
    out = _cli(env, "clients", "add", "--jwks", str(jwks), "--data-dir", str(data_dir), *extra)
    return str(json.loads(out)["client_id"])


@pytest.fixture(scope="module")
def app_server(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Iterator[AppServer]:
    missing = chromium_missing()
    if missing:
        pytest.skip(missing)
    root = tmp_path_factory.mktemp("app")
    data_dir = root / "data"
    data_dir.mkdir()
    uri = request.getfixturevalue("mongo_uri") if STORE == "mongo" else None
    env = {**os.environ, "FHIR_AUTH": "smart",
           **store_env(STORE, uri, f"app_{os.getpid()}_{abs(hash(request.node.nodeid))}")}
    admin_key = Key.make()
    admin_id = _register(env, data_dir, admin_key, "--admin")
    _cli(env, "users", "add", USERNAME, "--organization", f"Organization/{CLINIC['id']}", "--display", "Ana Front Desk",
         "--password-stdin", "--data-dir", str(data_dir), stdin=PASSWORD + "\n")
    server = ServerProcess(data_dir, root / "server.log", env=env).start()
    try:
        admin = AppServer(server, "").token(admin_key, admin_id, "system/*.cruds")["access_token"]
        app = AppServer(server, admin)
        for org in (CLINIC, PLAN):
            r = app.api("PUT", f"/fhir/Organization/{org['id']}", json=organization(org))
            assert r.status_code in (200, 201), r.text
        yield app
    finally:
        server.stop()
        if server.proc is not None and server.proc.poll() is None:
            server.kill()


@pytest.fixture(scope="module")
def playwright(app_server: AppServer) -> Iterator[Any]:
    """One Playwright driver per module (a second sync_playwright() in the same thread is refused)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        yield p


def launch(playwright: Any, *extra_args: str) -> Any:
    return playwright.chromium.launch(executable_path=str(CHROMIUM), args=[*CHROMIUM_ARGS, *extra_args],
                                      headless=True)


@pytest.fixture(scope="module")
def browser(playwright: Any) -> Iterator[Any]:
    b = launch(playwright)
    try:
        yield b
    finally:
        b.close()


def new_page(browser: Any) -> tuple[Any, Any]:
    """A fresh browser context in California time (so the page's 'today' is the server's day)."""
    context = browser.new_context(timezone_id="America/Los_Angeles", locale="en-US",
                                  viewport={"width": 1200, "height": 900})
    return context, context.new_page()


def sign_in(page: Any, root: str, username: str = USERNAME, password: str = PASSWORD) -> None:
    """The real thing: the page's Sign in button, the server's login page, back to the page with a token."""
    page.goto(f"{root}/app/")
    page.wait_for_selector("body[data-ready='1']")
    page.click("#sign-in")
    page.wait_for_selector("#username")
    page.fill("#username", username)
    page.fill("#password", password)
    page.click("button[type=submit]")
    page.wait_for_url(f"{root}/app/")
    page.wait_for_selector("body[data-ready='1'] #capture:not([hidden])")


@pytest.fixture
def page(browser: Any, app_server: AppServer, request: pytest.FixtureRequest) -> Iterator[Any]:
    """A signed-in page; its screenshot at the end of the test is kept."""
    context, pg = new_page(browser)
    try:
        sign_in(pg, app_server.root)
        yield pg
    finally:
        shot(pg, request.node.name + "-end")
        context.close()


def shot(page: Any, name: str) -> Path:
    """A full-page screenshot kept as a test artifact (the directory is gitignored)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
    path = ARTIFACTS / f"{STORE}-{safe}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def serious_violations(page: Any) -> list[dict[str, Any]]:
    """axe-core (bundled by the axe-playwright-python package, run offline in the page) — serious and critical
    violations of WCAG 2.0/2.1 A and AA rules."""
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page, options={"runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a",
                                                                            "wcag21aa", "best-practice"]},
                                       "resultTypes": ["violations"]})
    return [{"id": v["id"], "impact": v["impact"], "nodes": [n["target"] for n in v["nodes"]][:5]}
            for v in results.response["violations"] if v["impact"] in ("serious", "critical")]
