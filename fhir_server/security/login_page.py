"""The login page and error page of the web page sign-in, server-rendered HTML in the person's language.

Strings live in ``signin_messages.json`` (one object per language: ``en``, ``es``, ``zh-Hant``, ``vi``; a test
checks every key exists in every language). The language is ``ui_locales`` (SMART/OpenID Connect), else the
``ascmi_lang`` cookie the web page sets, else ``Accept-Language``, else English.

Every value is HTML-escaped; the page has no script, and its one style block is allowed by hash in the
Content-Security-Policy (:data:`CSP`), so nothing injected could run.
"""

from __future__ import annotations

import base64
import hashlib
import json
from functools import cache
from html import escape
from importlib import resources
from urllib.parse import urlencode

LANGUAGES = ("en", "es", "zh-Hant", "vi")
DEFAULT = "en"
ENDONYMS = {"en": "English", "es": "Español", "zh-Hant": "中文（繁體）", "vi": "Tiếng Việt"}
LANG_COOKIE = "ascmi_lang"
_ALIASES = {"zh": "zh-Hant", "zh-hant": "zh-Hant", "zh-tw": "zh-Hant", "zh-hk": "zh-Hant", "zh-mo": "zh-Hant"}

_STYLE = (
    "body{font-family:system-ui,sans-serif;margin:0;background:#f5f5f5;color:#1a1a1a;line-height:1.5}"
    "main{max-width:26rem;margin:3rem auto;background:#fff;padding:2rem;border-radius:.5rem;"
    "box-shadow:0 1px 3px rgba(0,0,0,.2)}"
    "h1{font-size:1.5rem;margin-top:0}label{display:block;font-weight:600;margin-top:1rem}"
    "input{width:100%;box-sizing:border-box;padding:.5rem;font-size:1rem;border:1px solid #555;border-radius:.25rem}"
    "button{margin-top:1.5rem;padding:.6rem 1.2rem;font-size:1rem;background:#0b5394;color:#fff;border:0;"
    "border-radius:.25rem;cursor:pointer}"
    "input:focus,button:focus,a:focus{outline:3px solid #e69138;outline-offset:2px}"
    ".error{color:#a00;background:#fdecea;border:1px solid #a00;padding:.75rem;border-radius:.25rem}"
    "nav ul{list-style:none;padding:0;display:flex;flex-wrap:wrap;gap:1rem}a{color:#0b5394}"
)
_STYLE_HASH = base64.b64encode(hashlib.sha256(_STYLE.encode()).digest()).decode()


def csp(form_targets: str = "'self'") -> str:
    """No script at all; the style block by hash; the form posts only to this server (and the redirect it
    answers goes only to the page's own origins: Chromium applies ``form-action`` to redirects too)."""
    return (f"default-src 'none'; style-src 'sha256-{_STYLE_HASH}'; form-action {form_targets}; "
            "frame-ancestors 'none'; base-uri 'none'")


@cache
def catalogue() -> dict[str, dict[str, str]]:
    text = resources.files("fhir_server.security").joinpath("signin_messages.json").read_text("utf-8")
    return json.loads(text)  # type: ignore[no-any-return]


def _match(tag: str) -> str | None:
    """``"es-MX"`` → ``"es"``; ``"zh-TW"`` → ``"zh-Hant"``; ``"fr"`` → None."""
    low = tag.strip().lower().replace("_", "-")
    if not low:
        return None
    for lang in LANGUAGES:
        if low == lang.lower():
            return lang
    if low in _ALIASES:
        return _ALIASES[low]
    if low.startswith("zh-hant"):
        return "zh-Hant"
    primary = low.split("-")[0]
    if primary == "zh":
        return None if "hans" in low or low in ("zh-cn", "zh-sg") else "zh-Hant"
    return primary if primary in LANGUAGES else None


def _accept_language(header: str) -> list[str]:
    """Tags of an ``Accept-Language`` header, best first (``q=0`` dropped)."""
    ranked: list[tuple[float, int, str]] = []
    for i, part in enumerate(header.split(",")):
        tag, _, params = part.strip().partition(";")
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                q = 0.0
        if tag and q > 0:
            ranked.append((-q, i, tag))
    return [t for _, _, t in sorted(ranked)]


def negotiate(ui_locales: str | None, cookie: str | None, accept_language: str | None) -> str:
    """The page language.

    >>> negotiate("vi es", None, None), negotiate(None, "zh-Hant", "es"), negotiate(None, None, "fr, es;q=0.5")
    ('vi', 'zh-Hant', 'es')
    >>> negotiate("fr", None, None)
    'en'
    """
    for tag in (ui_locales or "").split():
        if (found := _match(tag)) is not None:
            return found
    if cookie and (found := _match(cookie)) is not None:
        return found
    for tag in _accept_language(accept_language or ""):
        if (found := _match(tag)) is not None:
            return found
    return DEFAULT


def _page(lang: str, title: str, body: str) -> str:
    return (f'<!doctype html>\n<html lang="{escape(lang)}"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f'<meta name="referrer" content="no-referrer"><title>{escape(title)}</title>'
            f"<style>{_STYLE}</style></head><body><main>{body}</main></body></html>\n")


def login(lang: str, fields: dict[str, str], form_token: str, *, action: str, error: str | None = None,
          username: str = "") -> str:
    """The login form: the authorization request's parameters travel back as hidden fields."""
    m = catalogue()[lang]
    hidden = "".join(f'<input type="hidden" name="{escape(k)}" value="{escape(v)}">'
                     for k, v in fields.items() if k != "ui_locales")
    alert = ""
    described = ""
    if error is not None:
        alert = (f'<p id="signin-error" class="error" role="alert"><strong>{escape(m["error_prefix"])}</strong> '
                 f"{escape(m[error])}</p>")
        described = ' aria-describedby="signin-error" aria-invalid="true"'
    current = ' aria-current="true"'
    links = "".join(
        f'<li><a href="{escape(action + "?" + urlencode({**fields, "ui_locales": code}))}" lang="{code}" '
        f'hreflang="{code}"{current if code == lang else ""}>{escape(name)}</a></li>'
        for code, name in ENDONYMS.items())
    body = (
        f'<nav aria-label="{escape(m["language"])}"><ul>{links}</ul></nav>'
        f'<h1>{escape(m["heading"])}</h1><p>{escape(m["intro"])}</p>{alert}'
        f'<form method="post" action="{escape(action)}" novalidate>'
        f'<input type="hidden" name="csrf_token" value="{escape(form_token)}">'
        f'<input type="hidden" name="ui_locales" value="{escape(lang)}">{hidden}'
        f'<label for="username">{escape(m["username"])}</label>'
        f'<input id="username" name="username" type="text" autocomplete="username" autocapitalize="none" '
        f'spellcheck="false" required value="{escape(username)}"{described}>'
        f'<label for="password">{escape(m["password"])}</label>'
        f'<input id="password" name="password" type="password" autocomplete="current-password" required'
        f"{described}>"
        f'<button type="submit">{escape(m["submit"])}</button></form>'
    )
    return _page(lang, m["title"], body)


def error_page(lang: str, key: str, back: str) -> str:
    """A request that cannot be sent back to the page (unknown client, unregistered redirect URI)."""
    m = catalogue()[lang]
    body = (f'<h1>{escape(m["error_title"])}</h1><p class="error" role="alert">{escape(m[key])}</p>'
            f'<p><a href="{escape(back)}">{escape(m["back"])}</a></p>')
    return _page(lang, m["error_title"], body)
