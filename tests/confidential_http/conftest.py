"""Confidential communications over HTTP: a server with the ASCMI start-up content loaded (profiles, the
Care Partner network), on the store chosen by STORE."""

from __future__ import annotations

from pathlib import Path

import pytest

from fhir_server.settings import Settings


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path, auth="off", load_conformance=True)
