"""The job queue's contract, on SQLite and on Postgres: claims, leases, retries, dead letters, scopes."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select, update

from interlace.core.errors import IdempotencyConflict
from interlace.jobs.queue import NewJob
from interlace.jobs.store import SqlJobQueue
from interlace.jobs.transactions import Transactions
from interlace.store.database import Database
from interlace.store.jobs_tables import jobs, webhook_messages

PRINCIPAL = {"kind": "key", "id": "ik_test", "tenant": "acme"}


def job(tenant: str = "acme", **changes: object) -> NewJob:
    values: dict[str, object] = {
        "tenant": tenant,
        "principal": {**PRINCIPAL, "tenant": tenant},
        "operation": "chat",
        "model": "m",
        "request": {"model": "m", "messages": [{"role": "user", "content": "hi"}]},
        "max_attempts": 3,
    }
    values.update(changes)
    return NewJob(**values)  # type: ignore[arg-type]


async def test_claims_highest_priority_first_and_never_twice(database: Database) -> None:
    queue = SqlJobQueue(Transactions(database), lease_seconds=60)
    low, _ = await queue.enqueue(job(priority=-5))
    high, _ = await queue.enqueue(job(priority=10))
    mid, _ = await queue.enqueue(job())
    first = await queue.claim("w1", limit=2)
    assert [j.id for j in first] == [high.id, mid.id]
    assert all(j.status == "running" and j.attempts == 1 and j.lease_owner == "w1" for j in first)
    second = await queue.claim("w2", limit=5)
    assert [j.id for j in second] == [low.id]
    assert await queue.claim("w3", limit=5) == []


async def test_an_expired_lease_is_claimed_again_and_the_old_owner_cannot_store_a_result(
    database: Database,
) -> None:
    queue = SqlJobQueue(Transactions(database), lease_seconds=0.0)  # every lease has already expired
    queued, _ = await queue.enqueue(job(callback_url="https://hooks.example.com/x"))
    [first] = await queue.claim("dead-worker", limit=1)
    [again] = await queue.claim("live-worker", limit=1)
    assert again.id == queued.id
    assert again.attempts == 2
    assert again.lease_owner == "live-worker"
    assert await queue.heartbeat(queued.id, "dead-worker") is False
    assert await queue.complete(queued.id, "dead-worker", {"answer": "stale"}) is None
    done = await queue.complete(queued.id, "live-worker", {"answer": "fresh"})
    assert done is not None
    assert done.status == "succeeded"
    assert done.result == {"answer": "fresh"}
    assert await queue.complete(queued.id, "live-worker", {"answer": "twice"}) is None
    stored = await queue.get(queued.id, "acme")
    assert stored is not None
    assert stored.result == {"answer": "fresh"}
    async with database.engine.connect() as connection:
        messages = (
            await connection.execute(select(func.count()).where(webhook_messages.c.job_id == queued.id))
        ).scalar()
    assert messages == 1  # one webhook message for one stored result
    del first


async def test_retryable_failures_back_off_then_go_to_dead_letters(database: Database) -> None:
    queue = SqlJobQueue(Transactions(database), lease_seconds=60)
    queued, _ = await queue.enqueue(job(max_attempts=2))
    error = {"code": "rate_limit_exceeded", "message": "slow down", "status": 429}
    [claimed] = await queue.claim("w", limit=1)
    retried = await queue.fail(claimed.id, "w", error, retryable=True, delay=3600)
    assert retried is not None
    assert retried.status == "queued"
    assert retried.run_after > claimed.run_after
    assert await queue.claim("w", limit=1) == []  # not due before its backoff
    # make it due, claim the last attempt, fail again: dead letters, with the reason
    await _make_due(database, queued.id)
    [last] = await queue.claim("w", limit=1)
    assert last.attempts == 2
    dead = await queue.fail(last.id, "w", error, retryable=True, delay=1)
    assert dead is not None
    assert dead.status == "dead"
    assert dead.error is not None
    assert dead.error["dead_letter_reason"] == "attempts exhausted"
    assert [j.id for j in await queue.list("acme", statuses=["dead"])] == [queued.id]
    again = await queue.retry(queued.id, "acme")
    assert again is not None
    assert again.status == "queued"
    assert again.attempts == 0


async def test_a_non_retryable_failure_fails_at_once(database: Database) -> None:
    queue = SqlJobQueue(Transactions(database), lease_seconds=60)
    await queue.enqueue(job())
    [claimed] = await queue.claim("w", limit=1)
    failed = await queue.fail(claimed.id, "w", {"code": "invalid_request"}, retryable=False, delay=1)
    assert failed is not None
    assert failed.status == "failed"
    assert failed.attempts == 1


async def test_an_expired_last_attempt_is_reaped_to_dead_letters(database: Database) -> None:
    queue = SqlJobQueue(Transactions(database), lease_seconds=0.0)
    queued, _ = await queue.enqueue(job(max_attempts=1))
    await queue.claim("w", limit=1)
    assert await queue.claim("other", limit=1) == []  # no attempts left to re-claim
    [dead] = await queue.reap()
    assert dead.id == queued.id
    assert dead.status == "dead"
    assert dead.error is not None
    assert dead.error["code"] == "lease_expired"


async def test_per_tenant_concurrency_holds_across_claims(database: Database) -> None:
    queue = SqlJobQueue(Transactions(database), lease_seconds=60, tenant_concurrency=2)
    for _ in range(4):
        await queue.enqueue(job("acme"))
    other, _ = await queue.enqueue(job("globex"))
    claimed = await queue.claim("w1", limit=10)
    assert sorted(j.tenant for j in claimed) == ["acme", "acme", "globex"]
    assert await queue.claim("w2", limit=10) == []
    done = next(j for j in claimed if j.tenant == "acme")
    await queue.complete(done.id, "w1", {})
    assert [j.tenant for j in await queue.claim("w2", limit=10)] == ["acme"]
    del other


async def test_idempotency_keys_return_the_same_job_or_refuse_another_body(database: Database) -> None:
    queue = SqlJobQueue(Transactions(database))
    first, created = await queue.enqueue(job(idempotency_key="k1", request_hash="h1"))
    again, created_again = await queue.enqueue(job(idempotency_key="k1", request_hash="h1"))
    assert created
    assert not created_again
    assert again.id == first.id
    with pytest.raises(IdempotencyConflict) as raised:
        await queue.enqueue(job(idempotency_key="k1", request_hash="h2"))
    assert raised.value.status == 422
    other_tenant, created_other = await queue.enqueue(job("globex", idempotency_key="k1", request_hash="h2"))
    assert created_other
    assert other_tenant.id != first.id


async def test_reads_are_scoped_to_the_tenant(database: Database) -> None:
    queue = SqlJobQueue(Transactions(database))
    mine, _ = await queue.enqueue(job("acme"))
    theirs, _ = await queue.enqueue(job("globex"))
    assert await queue.get(theirs.id, "acme") is None
    assert await queue.cancel(theirs.id, "acme") is None
    assert [j.id for j in await queue.list("acme")] == [mine.id]
    assert {j.id for j in await queue.list(None)} == {mine.id, theirs.id}  # the operator
    cancelled = await queue.cancel(mine.id, "acme")
    assert cancelled is not None
    assert cancelled.status == "cancelled"


async def test_pages_follow_the_after_cursor(database: Database) -> None:
    queue = SqlJobQueue(Transactions(database))
    ids = [(await queue.enqueue(job()))[0].id for _ in range(5)]
    first = await queue.list("acme", limit=2)
    rest = await queue.list("acme", after=first[-1].id, limit=10)
    assert [j.id for j in first + rest] == list(reversed(ids))


async def _make_due(database: Database, job_id: str) -> None:
    async with database.engine.begin() as connection:
        await connection.execute(update(jobs).where(jobs.c.id == job_id).values(run_after=0))
