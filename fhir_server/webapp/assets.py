"""The page's files: looked up by name among the package data, never by a path the caller builds.

Only names listed in the package directory are served (no ``..``, no absolute paths), each with its media type,
a strong ETag from its bytes (so a browser revalidates cheaply) and the Content-Security-Policy the page runs
under: no inline script or style, nothing from another origin.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

LANGUAGES = ("en", "es", "zh-Hant", "vi")
MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".json": "application/json",
    ".svg": "image/svg+xml",
}
#: The page and every module it loads come from this origin; ``data:``/``blob:`` images are the uploaded scan's
#: preview. ``form-action 'self'`` and ``frame-ancestors 'none'`` keep the sign-in from being framed or diverted.
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; connect-src 'self'; "
       "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'")


@dataclass(frozen=True, slots=True)
class Asset:
    name: str
    body: bytes
    media_type: str
    etag: str


def _root() -> resources.abc.Traversable:
    return resources.files("fhir_server.webapp").joinpath("static")


@lru_cache(maxsize=64)
def asset(name: str) -> Asset | None:
    """The file ``name`` (``index.html``, ``js/main.js``, ``i18n/es.json`` …), or None when there is none.

    >>> asset("index.html").media_type
    'text/html; charset=utf-8'
    >>> asset("../__init__.py") is None, asset("nope.js") is None
    (True, True)
    """
    parts = name.split("/")
    if not name or any(p in ("", ".", "..") or p.startswith(".") for p in parts):
        return None
    suffix = "." + parts[-1].rpartition(".")[2]
    if suffix not in MEDIA_TYPES:
        return None
    node = _root()
    for part in parts:
        node = node.joinpath(part)
    if not node.is_file():
        return None
    body = node.read_bytes()
    return Asset(name, body, MEDIA_TYPES[suffix], '"' + hashlib.sha256(body).hexdigest()[:32] + '"')


def catalogue_names() -> list[str]:
    """The message catalogues shipped, one per language."""
    return sorted(p.name for p in _root().joinpath("i18n").iterdir() if p.name.endswith(".json"))
