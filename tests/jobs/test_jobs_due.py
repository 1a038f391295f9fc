"""The idle worker's probe (:mod:`interlace.jobs.due`), on SQLite and on Postgres: each condition that
makes a job or a webhook message due, and the states and times that do not."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import insert

from interlace.jobs.due import Due, probe
from interlace.store.database import Database
from interlace.store.jobs_tables import jobs, webhook_messages

NOW = 1_700_000_000.0


async def add_job(database: Database, status: str, **values: Any) -> None:
    row = {
        "id": f"job_{status}_{len(values)}",
        "tenant": "",
        "principal": {},
        "operation": "chat",
        "model": "m",
        "request": {},
        "status": status,
        "priority": 0,
        "attempts": 0,
        "max_attempts": 3,
        "run_after": NOW,
        "created_at": NOW,
    }
    async with database.begin() as connection:
        await connection.execute(insert(jobs).values(**{**row, **values}))


async def add_message(database: Database, status: str, **values: Any) -> None:
    row = {
        "id": f"msg_{status}",
        "job_id": "job_x",
        "tenant": "",
        "event": "job.succeeded",
        "url": "https://hooks.example.com/x",
        "payload": {},
        "status": status,
        "attempts": 0,
        "next_attempt_at": NOW,
        "created_at": NOW,
    }
    async with database.begin() as connection:
        await connection.execute(insert(webhook_messages).values(**{**row, **values}))


async def test_an_empty_database_has_nothing_due(database: Database) -> None:
    found = await probe(database.pool, NOW)
    assert found == Due(jobs=False, webhooks=False)
    assert not found


async def test_a_queued_job_is_due_once_its_run_after_passed(database: Database) -> None:
    await add_job(database, "queued", run_after=NOW)
    assert await probe(database.pool, NOW - 0.5) == Due(jobs=False, webhooks=False)
    assert await probe(database.pool, NOW) == Due(jobs=True, webhooks=False)
    assert await probe(database.pool, NOW + 10) == Due(jobs=True, webhooks=False)


async def test_a_running_job_is_due_once_its_lease_expired(database: Database) -> None:
    """Claimable again (attempts left) or to reap (none left): either way the worker must look."""
    await add_job(database, "running", lease_owner="w", lease_expires=NOW, attempts=1)
    await add_job(database, "running", id="job_last", lease_owner="w", lease_expires=NOW, attempts=3)
    assert await probe(database.pool, NOW) == Due(jobs=False, webhooks=False)  # still held
    assert await probe(database.pool, NOW + 0.5) == Due(jobs=True, webhooks=False)


@pytest.mark.parametrize("status", ["succeeded", "failed", "dead", "cancelled"])
async def test_a_finished_job_is_never_due(database: Database, status: str) -> None:
    await add_job(database, status, lease_expires=NOW - 100, finished_at=NOW - 100)
    assert not await probe(database.pool, NOW + 3600)


async def test_a_pending_message_is_due_once_its_next_attempt_time_passed(database: Database) -> None:
    await add_message(database, "pending", next_attempt_at=NOW)
    assert await probe(database.pool, NOW - 0.5) == Due(jobs=False, webhooks=False)
    assert await probe(database.pool, NOW) == Due(jobs=False, webhooks=True)


async def test_a_message_being_sent_is_due_once_its_lease_expired(database: Database) -> None:
    """A worker died mid-delivery: another one sends it again."""
    await add_message(database, "sending", next_attempt_at=NOW - 100, lease_owner="w", lease_expires=NOW)
    assert await probe(database.pool, NOW) == Due(jobs=False, webhooks=False)
    assert await probe(database.pool, NOW + 0.5) == Due(jobs=False, webhooks=True)


@pytest.mark.parametrize("status", ["delivered", "failed"])
async def test_a_delivered_or_failed_message_is_never_due(database: Database, status: str) -> None:
    await add_message(database, status, next_attempt_at=NOW - 100, delivered_at=NOW - 100)
    assert not await probe(database.pool, NOW + 3600)


async def test_jobs_and_messages_are_told_apart(database: Database) -> None:
    await add_job(database, "queued", run_after=NOW)
    await add_message(database, "pending", next_attempt_at=NOW + 5)
    assert await probe(database.pool, NOW) == Due(jobs=True, webhooks=False)
    assert await probe(database.pool, NOW + 5) == Due(jobs=True, webhooks=True)
