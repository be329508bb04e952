"""FHIR_VALIDATE_UNKNOWN_EXTENSIONS=warning: the lenient reading of an unknown extension in ``$validate``."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from fhir_server.settings import Settings


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path, load_conformance=False, auth="off", validate_unknown_extensions="warning")


def test_the_setting_is_read_from_the_environment() -> None:
    assert Settings.from_env({"FHIR_VALIDATE_UNKNOWN_EXTENSIONS": "Warning"}).validate_unknown_extensions == "warning"
    assert Settings.from_env({}).validate_unknown_extensions == "error"
    with pytest.raises(ValueError, match="FHIR_VALIDATE_UNKNOWN_EXTENSIONS"):
        Settings.from_env({"FHIR_VALIDATE_UNKNOWN_EXTENSIONS": "ignore"})


async def test_an_unknown_extension_is_a_warning_when_lenient(client: httpx.AsyncClient) -> None:
    resource = {"resourceType": "Patient", "extension": [{"url": "http://unknown.org/fhir/ext", "valueString": "x"}]}
    issues = (await client.post("/fhir/Patient/$validate", json=resource)).json()["issue"]
    assert [i for i in issues if i["severity"] == "error"] == []
    assert [i["expression"] for i in issues if i["severity"] == "warning" and "unknown.org" in i["diagnostics"]] \
        == [["Patient.extension[0]"]]


async def test_an_unknown_modifier_extension_stays_an_error(client: httpx.AsyncClient) -> None:
    resource = {"resourceType": "Patient",
                "modifierExtension": [{"url": "http://unknown.org/fhir/mod", "valueString": "x"}]}
    issues = (await client.post("/fhir/Patient/$validate", json=resource)).json()["issue"]
    assert [i["expression"] for i in issues if i["severity"] == "error"] == [["Patient.modifierExtension[0]"]]
