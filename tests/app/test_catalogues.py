"""The page's message catalogues: every key in every language, no empty text, a label for every code the form
offers, and every key the page names exists."""

from __future__ import annotations

import json
import re
from importlib import resources
from typing import Any

import pytest

from fhir_server.ascmi.terminology import load_terminology
from fhir_server.webapp.assets import LANGUAGES, catalogue_names

STATIC = resources.files("fhir_server.webapp").joinpath("static")


def catalogue(lang: str) -> dict[str, str]:
    return dict(json.loads(STATIC.joinpath("i18n", f"{lang}.json").read_text(encoding="utf-8")))


def page_sources() -> str:
    js = STATIC.joinpath("js")
    return STATIC.joinpath("index.html").read_text(encoding="utf-8") + "".join(
        f.read_text(encoding="utf-8") for f in js.iterdir() if f.name.endswith(".js"))


def test_there_is_one_catalogue_per_language_and_no_other() -> None:
    assert catalogue_names() == sorted(f"{lang}.json" for lang in LANGUAGES)


@pytest.mark.parametrize("lang", LANGUAGES[1:])
def test_every_key_exists_in_every_language(lang: str) -> None:
    english, other = catalogue("en"), catalogue(lang)
    assert sorted(set(english) - set(other)) == [], f"missing in {lang}"
    assert sorted(set(other) - set(english)) == [], f"only in {lang}"


@pytest.mark.parametrize("lang", LANGUAGES)
def test_no_message_is_empty_and_placeholders_match_english(lang: str) -> None:
    english, other = catalogue("en"), catalogue(lang)
    assert [k for k, v in other.items() if not isinstance(v, str) or not v.strip()] == []
    placeholders = re.compile(r"\{(\w+)\}")
    assert [k for k in english if set(placeholders.findall(english[k])) != set(placeholders.findall(other[k]))] == []


@pytest.mark.parametrize("lang", LANGUAGES[1:])
def test_translations_are_not_english_copies(lang: str) -> None:
    """Real translations: apart from codes and names that stay as they are (HIV/AIDS, Email …), a message
    identical to the English one is a placeholder left behind."""
    english, other = catalogue("en"), catalogue(lang)
    same = [k for k in english if english[k] == other[k] and len(english[k]) > 12]
    assert same == []


def test_every_code_the_form_offers_has_a_label_and_categories_an_explanation() -> None:
    t = load_terminology()
    needed: list[str] = []
    for code in t.categories:
        needed += [f"category.{code}", f"category.{code}.explain"]
    needed += [f"purpose.{c}" for c in t.purposes] + [f"partnerType.{c}" for c in t.care_partner_types]
    needed += [f"event.{c}" for c in t.expiration_events] + [f"relationship.{c}" for c in t.relationships]
    needed += [f"formType.{c}" for c in t.form_types]
    english = catalogue("en")
    assert [k for k in needed if k not in english] == []


def test_every_key_the_page_names_is_in_the_catalogue() -> None:
    source = page_sources()
    named: set[Any] = set(re.findall(r'data-i18n="([^"]+)"', source))
    named |= set(re.findall(r'dataset\.i18n = "([^"]+)"', source))
    named |= set(re.findall(r'\bt\("([a-zA-Z]+\.[a-zA-Z.?-]+)"', source))
    named |= set(re.findall(r'button\("([a-zA-Z]+\.[a-zA-Z]+)"', source))
    english = catalogue("en")
    assert sorted(k for k in named if k not in english) == []
    assert len(named) > 100
