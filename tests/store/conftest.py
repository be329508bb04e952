"""The ``store`` fixture: every test in tests/store runs once on SQLite and once on MongoDB (SecantusDB)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from fhir_server.store.base import Store
from tests.conftest import make_store


@pytest.fixture(params=["sqlite", "mongo"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    s = make_store(request.param, tmp_path, request)
    await s.open()
    try:
        yield s
    finally:
        client = getattr(s, "client", None)
        if request.param == "mongo" and client is not None:
            await client.drop_database(s.database)  # type: ignore[attr-defined]
        await s.close()
