"""The Care Partner page in Chromium: sign in, file a form in each language, see a 422 next to its field, look
up a member, revoke, record an expiration event — with an axe-core check on each screen."""

from __future__ import annotations

import base64
from typing import Any

import httpx
import pytest

from tests.app.conftest import CLINIC, PLAN, AppServer, launch, new_page, serious_violations, shot, sign_in

expect = pytest.importorskip("playwright.sync_api").expect
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
LANGS = ["en", "es", "zh-Hant", "vi"]


def open_page(page: Any, app_server: AppServer, lang: str = "en") -> None:
    """The signed-in page in ``lang`` (chosen with the picker, as staff do)."""
    if lang != "en":
        page.select_option("#lang", lang)
        page.wait_for_selector(f"html[lang='{lang}']", state="attached")  # (wait_for_function needs eval: CSP)


def fill_form(page: Any, *, cin: str, given: str, family: str, form_id: str, event: str | None = None) -> None:
    page.fill("#formId", form_id)
    page.fill("#signedDate", "2025-03-01")
    page.fill("#givenName", given)
    page.fill("#familyName", family)
    page.fill("#birthDate", "1980-05-17")
    page.fill("#mediCalId", cin)
    page.check("#cat-general-health-share")
    page.check("#cat-mental-health-share")
    page.check("#purpose-TREAT")
    page.check("#purpose-COC")
    if event:
        page.select_option("#expEvent", event)
    else:
        page.fill("#expDate", "2030-03-01")
    page.fill("#sigDate", "2025-03-01")
    for ack in ("rightToRevoke", "redisclosureNotice", "noConditioning", "copyReceived"):
        page.check(f"#ack-{ack}")


def token_of(page: Any) -> str:
    return str(page.evaluate("JSON.parse(sessionStorage.getItem('ascmi_token')).access_token"))


def test_a_signed_out_visitor_sees_only_the_sign_in(browser: Any, app_server: AppServer) -> None:
    context, page = new_page(browser)
    try:
        page.goto(f"{app_server.root}/app/")
        page.wait_for_selector("body[data-ready='1']")
        assert page.is_visible("#sign-in") and page.is_hidden("#capture") and page.is_hidden("#lookup")
        assert serious_violations(page) == []
        shot(page, "signed-out")
    finally:
        context.close()


def test_sign_in_speaks_the_chosen_language_and_sign_out_ends_the_token(browser: Any, app_server: AppServer) -> None:
    context, page = new_page(browser)
    try:
        page.goto(f"{app_server.root}/app/")
        page.wait_for_selector("body[data-ready='1']")
        page.select_option("#lang", "es")
        page.wait_for_selector("html[lang='es']", state="attached")
        assert any(c["name"] == "ascmi_lang" and c["value"] == "es" and c["path"] == "/" for c in context.cookies())
        page.click("#sign-in")
        page.wait_for_selector("#username")
        assert page.get_attribute("html", "lang") == "es"  # the login page read ui_locales / the cookie
        shot(page, "login-es")
        page.go_back()
        sign_in(page, app_server.root)
        assert page.get_attribute("html", "lang") == "es"  # remembered across the round trip
        assert "Ana Front Desk" in page.text_content("#who")
        assert page.url == f"{app_server.root}/app/"  # the code never stays in the address bar
        token = token_of(page)
        headers = {"Authorization": f"Bearer {token}"}
        assert httpx.get(f"{app_server.root}/fhir/Organization/{CLINIC['id']}", headers=headers).status_code == 200
        page.click("#sign-out")
        page.wait_for_selector("body[data-ready='1'] #sign-in:not([hidden])")
        assert page.evaluate("sessionStorage.getItem('ascmi_token')") is None
        assert httpx.get(f"{app_server.root}/fhir/Organization/{CLINIC['id']}", headers=headers).status_code == 401
    finally:
        context.close()


def test_a_session_ended_on_the_server_asks_to_sign_in_again(page: Any, app_server: AppServer) -> None:
    token = token_of(page)
    r = httpx.post(f"{app_server.root}/fhir/auth/logout", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code in (200, 204)
    page.fill("#lk-cin", "90000001A")
    page.click("#form-lookup button[type=submit]")
    expect(page.locator("#problem")).to_contain_text("Your session has ended")
    assert page.is_visible("#sign-in") and page.is_hidden("#sign-out")
    assert page.evaluate("sessionStorage.getItem('ascmi_token')") is None


def test_a_wrong_state_on_return_is_refused_and_no_token_is_kept(browser: Any, app_server: AppServer) -> None:
    context, page = new_page(browser)
    try:
        page.goto(f"{app_server.root}/app/?code=forged&state=not-mine")
        page.wait_for_selector("body[data-ready='1']")
        assert page.text_content("#problem")
        assert page.evaluate("sessionStorage.getItem('ascmi_token')") is None
        assert "code=" not in page.url
    finally:
        context.close()


@pytest.mark.parametrize("lang", LANGS)
def test_a_form_filed_in_each_language_shows_its_summary(page: Any, app_server: AppServer, lang: str) -> None:
    open_page(page, app_server, lang)
    assert page.get_attribute("html", "lang") == lang
    assert page.input_value("#collector [name=name]") == CLINIC["name"]  # the user's own Organization
    assert serious_violations(page) == [], "capture screen"
    n = LANGS.index(lang)
    fill_form(page, cin=f"900000{n}{n}A", given="Lan", family="Nguyễn", form_id=f"BROWSER-{lang}")
    page.click("#form-capture button[type=submit]")
    page.wait_for_selector("#capture-result:not([hidden])")
    expect(page.locator("#capture-summary")).to_contain_text("May be shared:")
    summary = page.text_content("#capture-summary")
    assert "May be shared:" in summary and "Sunrise Community Clinic" in summary
    assert page.text_content("#capture-result-h") == {"en": "Consent on file", "es": "Consentimiento registrado",
                                                      "zh-Hant": "已登錄的同意書", "vi": "Sự đồng ý đã lưu hồ sơ"}[lang]
    shot(page, f"filed-{lang}")
    assert serious_violations(page) == [], "summary screen"


def test_a_422_appears_next_to_the_field_it_names(page: Any, app_server: AppServer) -> None:
    fill_form(page, cin="", given="Rosa", family="Ortega", form_id="BROWSER-422")
    page.fill("#expDate", "2024-01-01")  # before the signed date
    page.click("#form-capture button[type=submit]")
    page.wait_for_selector("#form-capture .error-summary:not([hidden])")
    # AB 133 without a Medi-Cal number: $.individual.mediCalId, shown by the CIN box and tied to it.
    cin_error = page.locator("#mediCalId").get_attribute("aria-describedby") or ""
    error_ids = [i for i in cin_error.split() if i.startswith("err-")]
    assert error_ids and page.get_attribute("#mediCalId", "aria-invalid") == "true"
    assert page.locator(f"#{error_ids[0]}").is_visible()
    assert page.locator("#mediCalId").locator("xpath=..").locator(".field-error").count() == 1
    # The expiration date before the signed date: next to the end date.
    exp_error = (page.get_attribute("#expDate", "aria-describedby") or "").split()
    assert any(i.startswith("err-") for i in exp_error)
    assert page.get_attribute(".error-summary", "role") == "alert"
    assert page.evaluate("document.activeElement.classList.contains('error-summary')")  # focus moved there
    page.locator(".error-summary a", has_text=page.text_content(f"#{error_ids[0]}")).click()
    assert page.evaluate("document.activeElement.id") == "mediCalId"  # the summary's link goes to the field
    assert page.is_hidden("#capture-result")
    shot(page, "error-422")
    assert serious_violations(page) == [], "error screen"
    # Fixing the fields clears the errors and files the form.
    page.fill("#mediCalId", "90000422A")
    page.fill("#expDate", "2030-01-01")
    page.click("#form-capture button[type=submit]")
    page.wait_for_selector("#capture-result:not([hidden])")
    assert page.locator(".field-error").count() == 0 and page.get_attribute("#mediCalId", "aria-invalid") is None


def test_look_up_record_an_expiration_event_and_revoke(page: Any, app_server: AppServer) -> None:
    fill_form(page, cin="90000777B", given="Minh", family="Trần", form_id="BROWSER-LOOKUP",
              event="medi-cal-disenrollment")
    page.click("#form-capture button[type=submit]")
    page.wait_for_selector("#capture-result:not([hidden])")

    # By name and birth date.
    page.fill("#lk-family", "Trần")
    page.fill("#lk-given", "Minh")
    page.fill("#lk-birth", "1980-05-17")
    page.click("#form-lookup button[type=submit]")
    page.wait_for_selector("#member:not([hidden])")
    assert page.text_content("#member-h") == "Minh Trần"
    expect(page.locator("#member-on-file")).to_contain_text("Yes: ASCMI AB 133")
    rows = page.locator("#consents tbody tr")
    assert rows.count() == 1 and "In force" in rows.first.text_content()
    expect(page.locator("#sharing tbody tr").first).to_contain_text("Yes")  # physical health, shared
    sharing = page.locator("#sharing")
    expect(sharing).to_contain_text(CLINIC["name"])
    hiv = page.locator("#sharing tbody tr", has_text="HIV/AIDS")
    assert "No" in hiv.text_content()  # not shared on the form, and HIV is never on the floor for... a consent
    shot(page, "lookup")
    assert serious_violations(page) == [], "lookup screen"

    # The expiration event: the Consent's period now ends that day.
    page.select_option("#ex-event", "medi-cal-disenrollment")
    page.fill("#ex-date", "2025-06-30")
    page.click("#form-expire button[type=submit]")
    expect(page.locator("#status")).to_contain_text("The expiration event is recorded.")
    expect(page.locator("#consents tbody tr").first).to_contain_text("June 30, 2025")

    # A second form for the same person, then its revocation — by CIN this time.
    page.fill("#formId", "BROWSER-LOOKUP-2")
    page.fill("#signedDate", "2025-07-01")
    page.fill("#sigDate", "2025-07-01")
    page.select_option("#expEvent", "")
    page.fill("#expDate", "2031-01-01")
    page.click("#form-capture button[type=submit]")
    expect(page.locator("#capture-summary")).to_contain_text("signed 2025-07-01")
    page.fill("#lk-family", "")
    page.fill("#lk-cin", "90000777B")
    page.click("#form-lookup button[type=submit]")
    expect(page.locator("#consents tbody tr")).to_have_count(2)
    page.fill("#rv-id", "REV-BROWSER-1")
    page.fill("#rv-effective", "2025-08-01")
    page.fill("#rv-signed", "2025-08-01")
    page.click("#form-revoke button[type=submit]")
    expect(page.locator("#status")).to_contain_text("The revocation is on file.")
    expect(page.locator("#consents tbody tr")).to_have_count(3)
    expect(page.locator("#consents tbody")).to_contain_text("ASCMI Revocation")
    expect(page.locator("#member-on-file")).to_contain_text("Yes: ASCMI Revocation")
    revocations = app_server.api("GET", "/fhir/Consent", params={"identifier": "REV-BROWSER-1"}).json()
    assert revocations["total"] == 1  # the optional revocation number became the Consent's identifier
    expect(page.locator("#sharing tbody tr").first).to_contain_text("No")  # nothing shared after the revocation
    # The accounting of disclosures lists what this Organization received about the member (audit is written
    # behind the answers, so look again).
    page.click("#form-lookup button[type=submit]")
    expect(page.locator("#disclosures tbody tr").first).not_to_contain_text("No disclosures")
    expect(page.locator("#disclosures tbody")).to_contain_text(CLINIC["name"])  # the recipient by name
    shot(page, "revoked")


# A 1×1 PNG: the "scan" of the signed form.
PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQ"
                       "AAAABJRU5ErkJggg==")


def partner_row(page: Any, box: str, n: int, org: dict[str, str]) -> None:
    row = page.locator(f"#{box} > fieldset").nth(n)
    row.locator("[name=name]").fill(org["name"])
    row.locator("[name=value]").fill(org["npi"])
    row.locator("[name=type]").select_option(org["type"])
    row.locator("[name=coveredEntity]").check()


def test_every_part_of_a_non_ab133_form_reaches_the_consent(page: Any, app_server: AppServer) -> None:
    """Representative, minor signature, named recipients, an exclusion, an intermediary, the uploaded scan."""
    page.check("#formType-NON-AB133")
    fill_form(page, cin="", given="Yến", family="Lê", form_id="BROWSER-FULL")
    page.fill("#birthDate", "2010-04-02")  # a minor
    page.fill("#otherNames", "Jenny Le, Yen Le")
    page.fill("#addrLine", "12 Palm Ave")
    page.fill("#addrCity", "San Jose")
    page.fill("#addrState", "CA")
    page.fill("#addrPostal", "95112")
    page.fill("#phone", "(408) 555-0101")
    page.fill("#preferredLanguage", "vi")
    page.check("#cat-reproductive-health-share")
    page.uncheck("#allCarePartners")
    page.click("#add-include")
    partner_row(page, "include-list", 0, {"name": "Bay ECM Services", "npi": "1333333334", "type": "ecm-provider"})
    page.click("#add-exclude")
    partner_row(page, "exclude-list", 0, PLAN)
    page.click("#add-intermediary")
    partner_row(page, "intermediary-list", 0, {"name": "Golden State HIE", "npi": "1777777772", "type": "hie"})
    page.check("#signer-representative")
    page.fill("#repName", "Hoa Lê")
    page.select_option("#repRelationship", "parent")
    page.fill("#repAuthority", "Parent of a minor")
    page.check("#method-electronic")
    page.check("#minorSigned")
    page.fill("#minorDate", "2025-03-01")
    page.check("#minorCategory-reproductive-health")
    page.set_input_files("#attachment", files=[{"name": "signed.png", "mimeType": "image/png", "buffer": PNG}])
    page.click("#form-capture button[type=submit]")
    expect(page.locator("#capture-summary")).to_contain_text("Never with: Golden Poppy Health Plan")
    summary = page.text_content("#capture-summary")
    assert "ASCMI Non-AB 133 signed 2025-03-01" in summary and "Bay ECM Services" in summary
    assert "signed for by the minor" in summary
    consent_id = page.text_content("#capture-consent").split("Consent/")[1].split("/")[0]
    consent = app_server.api("GET", f"/fhir/Consent/{consent_id}").json()
    assert consent["sourceReference"]["reference"].startswith("DocumentReference/")
    assert consent["performer"][0]["reference"].startswith("RelatedPerson/")
    doc = app_server.api("GET", f"/fhir/{consent['sourceReference']['reference']}").json()
    assert base64.b64decode(doc["content"][0]["attachment"]["data"]) == PNG
    hie = app_server.api("GET", "/fhir/Organization", params={"identifier": "1777777772"}).json()
    assert hie["total"] == 1 and hie["entry"][0]["resource"]["name"] == "Golden State HIE"  # intermediary kept
    patient = app_server.api("GET", f"/fhir/{consent['patient']['reference']}").json()
    assert patient["birthDate"] == "2010-04-02" and patient["address"][0]["city"] == "San Jose"
    shot(page, "full-form")


@pytest.mark.parametrize("lang,heading,born", [
    ("zh-Hant", "陳小明", "1980年5月17日"),
    ("vi", "陳 小明", "17 tháng 5, 1980"),
    ("es", "小明 陳", "17 de mayo de 1980"),
])
def test_names_and_dates_follow_the_language(page: Any, app_server: AppServer, lang: str, heading: str,
                                             born: str) -> None:
    """Family name first in Chinese (Han characters run together) and Vietnamese; dates by Intl.DateTimeFormat;
    and the name fields themselves in that order, so the keyboard order is the order seen."""
    open_page(page, app_server, lang)
    order = page.evaluate("[...document.querySelectorAll('#capture .names input')].map(e => e.id)")
    assert order == (["familyName", "givenName"] if lang in ("zh-Hant", "vi") else ["givenName", "familyName"])
    fill_form(page, cin=f"9000{LANGS.index(lang)}555C", given="小明", family="陳", form_id=f"BROWSER-NAME-{lang}")
    page.click("#form-capture button[type=submit]")
    page.wait_for_selector("#capture-result:not([hidden])")
    page.fill("#lk-cin", f"9000{LANGS.index(lang)}555C")
    page.click("#form-lookup button[type=submit]")
    page.wait_for_selector("#member:not([hidden])")
    assert page.text_content("#member-h") == heading
    assert born in page.text_content("#member-facts")


def test_a_422_inside_a_repeated_care_partner_lands_on_that_row(page: Any, app_server: AppServer) -> None:
    """``$.recipients.include[1].name``: the second row's name box, not the first's."""
    fill_form(page, cin="90000888D", given="An", family="Phạm", form_id="BROWSER-ROWS")
    page.uncheck("#allCarePartners")
    page.click("#add-include")
    partner_row(page, "include-list", 0, PLAN)
    page.click("#add-include")
    page.locator("#include-list > fieldset").nth(1).locator("[name=value]").fill("1555555550")
    page.click("#form-capture button[type=submit]")
    page.wait_for_selector("#form-capture .error-summary:not([hidden])")
    second = page.locator("#include-list > fieldset").nth(1).locator("[name=name]")
    first = page.locator("#include-list > fieldset").nth(0).locator("[name=name]")
    assert second.get_attribute("aria-invalid") == "true" and first.get_attribute("aria-invalid") is None
    described = (second.get_attribute("aria-describedby") or "").split()
    assert any(page.locator(f"#{i}").is_visible() for i in described if i.startswith("err-"))


def test_sign_in_over_plain_http_to_another_host_says_https_is_needed(playwright: Any,
                                                                     app_server: AppServer) -> None:
    """PKCE needs WebCrypto, which browsers give only to secure contexts: the page says so instead of failing."""
    port = app_server.root.rsplit(":", 1)[1]
    browser = launch(playwright, "--host-resolver-rules=MAP clinic.example 127.0.0.1")
    try:
        page = browser.new_page()
        page.goto(f"http://clinic.example:{port}/app/")
        page.wait_for_selector("body[data-ready='1']")
        page.click("#sign-in")
        expect(page.locator("#problem")).to_contain_text("https://")
        assert page.url == f"http://clinic.example:{port}/app/"  # never left for the login page
    finally:
        browser.close()


def test_the_keyboard_reaches_everything_in_reading_order(page: Any, app_server: AppServer) -> None:
    """Skip link first, then the language picker and sign-out; the skip link lands in the main content; each
    focused control shows a focus ring."""
    page.goto(f"{app_server.root}/app/")
    page.wait_for_selector("body[data-ready='1'] #capture:not([hidden])")
    focused = []
    for _ in range(6):
        page.keyboard.press("Tab")
        focused.append(page.evaluate("document.activeElement.id || document.activeElement.className"))
    assert focused[:3] == ["skip", "lang", "sign-out"], focused
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline != "none"
    page.focus(".skip")
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"
