"""Subscriptions run on the shared ``client`` (both stores) with fast retries, and a real receiver."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from fhir_server.settings import Settings
from tests.subscriptions.support import Receiver, receiver


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path, load_conformance=False, auth="off", subscription_retry_seconds=0.1,
                    subscription_max_attempts=3, subscription_poll_seconds=0.1)


@pytest.fixture
async def hook() -> AsyncIterator[Receiver]:
    async with receiver() as r:
        yield r
