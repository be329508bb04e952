"""ASCMI over HTTP: a server with the ASCMI start-up content (profiles, the Care Partner network) loaded."""

from __future__ import annotations

from pathlib import Path

import pytest

from fhir_server.settings import Settings


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path, auth="off", load_conformance=True)
