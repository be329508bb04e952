from __future__ import annotations

import copy
import json
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from fhir_server.ascmi.terminology import Terminology, load_terminology

ROOT = Path(__file__).resolve().parents[2]
FORMS = ROOT / "examples" / "forms"
TODAY = date(2025, 6, 2)
NOW = datetime(2025, 6, 2, 10, 30, tzinfo=ZoneInfo("America/Los_Angeles"))


def example(name: str) -> dict[str, Any]:
    return copy.deepcopy(json.loads((FORMS / f"{name}.json").read_text(encoding="utf-8")))


def example_names(kind: str) -> list[str]:
    names = sorted(p.name[:-5] for p in FORMS.glob("*.json") if not p.name.endswith(".bundle.json"))
    return [n for n in names if ("revokes" in json.loads((FORMS / f"{n}.json").read_text())) == (kind == "revocation")]


@pytest.fixture(scope="session")
def terminology() -> Terminology:
    return load_terminology()
