"""State databases for the event-log tests: SQLite in a temporary directory, and a real Postgres
(:mod:`tests.support.databases`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from tests.support.databases import state_database
from tests.support.events import FlakyDatabase


@pytest.fixture
async def sqlite_database(tmp_path: Path) -> AsyncIterator[FlakyDatabase]:
    async for database in state_database("sqlite", tmp_path):
        yield database


@pytest.fixture(params=["sqlite", "postgres"])
async def database(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[FlakyDatabase]:
    """Each test that takes it runs on SQLite and on a fresh Postgres database."""
    async for database in state_database(request.param, tmp_path):
        yield database
