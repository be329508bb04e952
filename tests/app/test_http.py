"""The page over HTTP (no browser): served without a token, with its media types, revalidation and a strict
Content-Security-Policy; the vocabulary the form offers; and the Consent summary through the gate."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fhir_server.settings import Settings
from tests.security.conftest import Secure, bearer

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "forms" / "ab133-all-share.json"


@pytest.fixture
def secure_settings(tmp_path: Path) -> Settings:
    """ASCMI start-up content on: intake needs the Care Partner network Organization."""
    return Settings(data_dir=tmp_path, load_conformance=True, auth="smart")


@pytest.mark.parametrize("path,media", [
    ("/app/", "text/html; charset=utf-8"),
    ("/app/js/main.js", "text/javascript; charset=utf-8"),
    ("/app/css/app.css", "text/css; charset=utf-8"),
    ("/app/i18n/zh-Hant.json", "application/json"),
    ("/app/vocabulary.json", "application/json"),
])
async def test_the_page_and_its_files_need_no_token_and_carry_a_strict_csp(secure: Secure, path: str,
                                                                          media: str) -> None:
    r = await secure.client.get(path)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == media
    csp = r.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["referrer-policy"] == "no-referrer"
    assert r.headers["cache-control"] == "no-cache"
    again = await secure.client.get(path, headers={"If-None-Match": r.headers["etag"]})
    assert again.status_code == 304 and again.content == b""


async def test_the_page_has_no_inline_script_or_style(secure: Secure) -> None:
    html = (await secure.client.get("/app/")).text
    assert "<script>" not in html and " on" + "click=" not in html and "style=" not in html and "<style" not in html
    assert '<script type="module" src="/app/js/main.js"></script>' in html


@pytest.mark.parametrize("path", ["/app/nope.js", "/app/%2e%2e/app.py", "/app/js/../../app.py", "/app/.hidden.js",
                                  "/app/i18n/xx.json", "/app/index.py"])
async def test_a_file_the_page_does_not_have_is_a_404_operation_outcome(secure: Secure, path: str) -> None:
    r = await secure.client.get(path)
    assert r.status_code in (401, 404)  # a path normalised out of /app/ is an ordinary protected URL
    assert r.json()["resourceType"] == "OperationOutcome"


async def test_app_without_slash_redirects_to_the_page(secure: Secure) -> None:
    r = await secure.client.get("/app")
    assert r.status_code == 308 and r.headers["location"] == "/app/"


async def test_the_vocabulary_is_the_code_systems(secure: Secure) -> None:
    v = (await secure.client.get("/app/vocabulary.json")).json()
    assert v["languages"] == ["en", "es", "zh-Hant", "vi"]
    assert v["formTypes"] == ["AB133", "NON-AB133"]
    codes = [c["code"] for c in v["categories"]]
    assert "general-health" in codes and "education" in codes and len(codes) == 12
    assert {"TREAT", "social-services"} <= set(v["purposes"])
    assert v["cinSystem"] == "https://ascmi.example.org/fhir/sid/medi-cal-cin"


async def _file(secure: Secure, token: str) -> str:
    r = await secure.client.post("/ascmi/forms", content=EXAMPLE.read_bytes(),
                                 headers={**bearer(token), "Content-Type": "application/json"})
    assert r.status_code == 201, r.text
    return r.headers["location"].split("/Consent/")[1].split("/")[0]


async def test_the_summary_is_render_s_text_for_a_consent_the_caller_may_see(secure: Secure) -> None:
    consent = await _file(secure, await secure.admin_token())
    _, token = await secure.partner(organization="Organization/elsewhere")
    admin = await secure.admin_token()
    r = await secure.client.get(f"/ascmi/consents/{consent}/summary", headers=bearer(admin))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["language"] == "en" and body["consent"].startswith(f"Consent/{consent}/_history/")
    assert body["text"].startswith("ASCMI AB 133 signed 2025-02-03 (in force)")
    assert "Psychotherapy notes are never shared" in body["text"]
    # A Care Partner that is neither a network member nor named on the form: the same 404 as no Consent at all.
    hidden = await secure.client.get(f"/ascmi/consents/{consent}/summary", headers=bearer(token))
    missing = await secure.client.get("/ascmi/consents/no-such/summary", headers=bearer(token))
    assert hidden.status_code == missing.status_code == 404
    assert hidden.json()["issue"][0]["code"] == missing.json()["issue"][0]["code"] == "not-found"


async def test_the_summary_needs_a_token_and_consent_read_scope(secure: Secure) -> None:
    consent = await _file(secure, await secure.admin_token())
    assert (await secure.client.get(f"/ascmi/consents/{consent}/summary")).status_code == 401
    _, token = await secure.partner(scopes=("system/Patient.rs",))
    r = await secure.client.get(f"/ascmi/consents/{consent}/summary", headers=bearer(token))
    assert r.status_code == 403 and r.json()["issue"][0]["code"] == "forbidden"
    assert json.dumps(r.json()).count("Consent.r") >= 1
