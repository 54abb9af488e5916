"""Integration tests get their own scratch database per test: they commit for real."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from inventory.config import Settings
from inventory.db import Database
from tests.conftest import create_scratch_database


@pytest.fixture(params=["sqlite", "postgresql"])
def scratch(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """A fresh migrated database on each backend, dropped afterwards."""
    url, drop = create_scratch_database(request.param, tmp_path)
    database = Database(Settings(database_url=url, log_level="WARNING"))
    yield database
    database.dispose()
    drop()
