"""The job queue on our own SQLAlchemy store: SQLite embedded, Postgres at scale.

A claim is one statement, ``UPDATE jobs SET lease… WHERE id IN (SELECT id … ORDER BY priority DESC,
created_at LIMIT n FOR UPDATE SKIP LOCKED) RETURNING *``: on Postgres concurrent workers skip each
other's rows instead of waiting; on SQLite the statement is a single write transaction (the database
has one writer at a time), so two processes never claim the same row. Due rows are queued ones whose
``run_after`` passed, and running ones whose lease expired with attempts left.

Every transition after a claim is conditional on ``lease_owner`` and ``status = 'running'``: a worker
that lost its lease (it stalled, was killed and its job re-claimed) changes nothing. A terminal
transition writes the job's webhook message and counts its batch line in the same transaction.
"""

from __future__ import annotations

import secrets
import time
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from interlace.core.errors import IdempotencyConflict
from interlace.jobs.queue import ACTIVE, Job, NewJob, TenantScope
from interlace.jobs.webhooks.outbox import add_message
from interlace.store.jobs_tables import batches, jobs

if TYPE_CHECKING:
    from collections.abc import Sequence

    from sqlalchemy.engine import Row
    from sqlalchemy.ext.asyncio import AsyncConnection
    from sqlalchemy.sql.elements import ColumnElement

    from interlace.jobs.transactions import Transactions

__all__ = ["SqlJobQueue", "job_values", "new_job_id"]

_COLUMNS = tuple(c.name for c in jobs.columns)


def new_job_id() -> str:
    return f"job_{secrets.token_hex(12)}"


class SqlJobQueue:
    """:class:`~interlace.jobs.queue.JobQueue` over the state database."""

    def __init__(
        self, tx: Transactions, *, lease_seconds: float = 60.0, tenant_concurrency: int | None = None
    ) -> None:
        self.tx = tx
        self.lease_seconds = lease_seconds
        self.tenant_concurrency = tenant_concurrency

    # --- submission ---

    async def enqueue(self, job: NewJob) -> tuple[Job, bool]:
        values = job_values(job, time.time())
        try:
            async with self.tx.begin() as connection:
                await connection.execute(insert(jobs).values(**values))
        except IntegrityError:
            if job.idempotency_key is None:
                raise
            existing = await self._by_key(job.tenant, job.idempotency_key)
            if existing is None:  # pragma: no cover - a unique violation of another kind
                raise
            if existing.request_hash != job.request_hash:
                raise IdempotencyConflict(
                    f"Idempotency-Key '{job.idempotency_key}' was used for a different request "
                    f"(job {existing.id}); use a new key for a new request.",
                    param="Idempotency-Key",
                ) from None
            return existing, False
        return _job(values), True

    async def _by_key(self, tenant: str, key: str) -> Job | None:
        async with self.tx.connect() as connection:
            row = (
                await connection.execute(
                    select(jobs).where(jobs.c.tenant == tenant, jobs.c.idempotency_key == key)
                )
            ).first()
        return _row(row) if row is not None else None

    # --- workers ---

    async def claim(self, owner: str, *, limit: int) -> list[Job]:
        claimed: list[Job] = []
        # with a per-tenant limit, one row per statement: the limit is checked for every claim
        step = 1 if self.tenant_concurrency is not None else limit
        while len(claimed) < limit:
            got = await self._claim(owner, min(step, limit - len(claimed)))
            claimed += got
            if len(got) < step:
                break
        return claimed

    async def _claim(self, owner: str, limit: int) -> list[Job]:
        now = time.time()
        due = or_(
            and_(jobs.c.status == "queued", jobs.c.run_after <= now),
            and_(
                jobs.c.status == "running",
                jobs.c.lease_expires < now,
                jobs.c.attempts < jobs.c.max_attempts,
            ),
        )
        conditions: list[ColumnElement[bool]] = [due]
        if self.tenant_concurrency is not None:
            busy = (
                select(jobs.c.tenant)
                .where(jobs.c.status == "running", jobs.c.lease_expires >= now)
                .group_by(jobs.c.tenant)
                .having(func.count() >= self.tenant_concurrency)
            )
            conditions.append(jobs.c.tenant.not_in(busy))
        chosen = (
            select(jobs.c.id)
            .where(*conditions)
            .order_by(jobs.c.priority.desc(), jobs.c.created_at, jobs.c.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        statement = (
            update(jobs)
            .where(jobs.c.id.in_(chosen))
            .values(
                status="running",
                lease_owner=owner,
                lease_expires=now + self.lease_seconds,
                attempts=jobs.c.attempts + 1,
                started_at=func.coalesce(jobs.c.started_at, now),
            )
            .returning(*jobs.columns)
        )
        async with self.tx.begin() as connection:
            rows = (await connection.execute(statement)).all()
        claimed = [_row(row) for row in rows]  # RETURNING has no order: the claim order again
        return sorted(claimed, key=lambda job: (-job.priority, job.created_at, job.id))

    async def heartbeat(self, job_id: str, owner: str) -> bool:
        async with self.tx.begin() as connection:
            result = await connection.execute(
                update(jobs)
                .where(*_held(job_id, owner))
                .values(lease_expires=time.time() + self.lease_seconds)
            )
        return bool(result.rowcount)

    async def complete(self, job_id: str, owner: str, result: dict[str, Any]) -> Job | None:
        return await self._finish(_held(job_id, owner), status="succeeded", result=result, error=None)

    async def fail(
        self, job_id: str, owner: str, error: dict[str, Any], *, retryable: bool, delay: float
    ) -> Job | None:
        held = _held(job_id, owner)
        if retryable:
            now = time.time()
            async with self.tx.begin() as connection:
                row = (
                    await connection.execute(
                        update(jobs)
                        .where(*held, jobs.c.attempts < jobs.c.max_attempts)
                        .values(
                            status="queued",
                            run_after=now + delay,
                            lease_owner=None,
                            lease_expires=None,
                            error=error,
                        )
                        .returning(*jobs.columns)
                    )
                ).first()
            if row is not None:
                return _row(row)
            error = {**error, "dead_letter_reason": "attempts exhausted"}
        return await self._finish(held, status="dead" if retryable else "failed", result=None, error=error)

    async def postpone(self, job_id: str, owner: str, *, delay: float) -> Job | None:
        async with self.tx.begin() as connection:
            row = (
                await connection.execute(
                    update(jobs)
                    .where(*_held(job_id, owner))
                    .values(
                        status="queued",
                        run_after=time.time() + delay,
                        lease_owner=None,
                        lease_expires=None,
                        attempts=jobs.c.attempts - 1,
                    )
                    .returning(*jobs.columns)
                )
            ).first()
        return _row(row) if row is not None else None

    async def release(self, owner: str) -> int:
        async with self.tx.begin() as connection:
            result = await connection.execute(
                update(jobs)
                .where(jobs.c.lease_owner == owner, jobs.c.status == "running")
                .values(
                    status="queued",
                    lease_owner=None,
                    lease_expires=None,
                    attempts=jobs.c.attempts - 1,
                )
            )
        return int(result.rowcount)

    async def reap(self) -> list[Job]:
        now = time.time()
        expired = and_(
            jobs.c.status == "running",
            jobs.c.lease_expires < now,
            jobs.c.attempts >= jobs.c.max_attempts,
        )
        async with self.tx.connect() as connection:
            ids = (await connection.execute(select(jobs.c.id).where(expired))).scalars().all()
        dead: list[Job] = []
        for job_id in ids:
            error = {
                "code": "lease_expired",
                "message": "the worker running the last attempt stopped before it finished",
                "dead_letter_reason": "attempts exhausted",
            }
            job = await self._finish((jobs.c.id == job_id, expired), status="dead", result=None, error=error)
            if job is not None:
                dead.append(job)
        return dead

    async def _finish(
        self,
        where: Sequence[ColumnElement[bool]],
        *,
        status: str,
        result: dict[str, Any] | None,
        error: dict[str, Any] | None,
    ) -> Job | None:
        async with self.tx.begin() as connection:
            row = (
                await connection.execute(
                    update(jobs)
                    .where(*where)
                    .values(
                        status=status,
                        result=result,
                        error=error,
                        lease_owner=None,
                        lease_expires=None,
                        finished_at=time.time(),
                    )
                    .returning(*jobs.columns)
                )
            ).first()
            if row is None:
                return None
            job = _row(row)
            await _ended(connection, job)
        return job

    # --- callers and operators ---

    async def cancel(self, job_id: str, scope: TenantScope) -> Job | None:
        where = [jobs.c.id == job_id, jobs.c.status.in_(ACTIVE), *_scoped(scope)]
        job = await self._finish(where, status="cancelled", result=None, error=None)
        return job if job is not None else await self.get(job_id, scope)

    async def retry(self, job_id: str, scope: TenantScope) -> Job | None:
        async with self.tx.begin() as connection:
            row = (
                await connection.execute(
                    update(jobs)
                    .where(jobs.c.id == job_id, jobs.c.status.in_(("failed", "dead")), *_scoped(scope))
                    .values(
                        status="queued",
                        attempts=0,
                        run_after=time.time(),
                        error=None,
                        finished_at=None,
                    )
                    .returning(*jobs.columns)
                )
            ).first()
        return _row(row) if row is not None else await self.get(job_id, scope)

    async def get(self, job_id: str, scope: TenantScope) -> Job | None:
        async with self.tx.connect() as connection:
            row = (await connection.execute(select(jobs).where(jobs.c.id == job_id, *_scoped(scope)))).first()
        return _row(row) if row is not None else None

    async def list(
        self,
        scope: TenantScope,
        *,
        statuses: Sequence[str] = (),
        operation: str | None = None,
        batch_id: str | None = None,
        after: str | None = None,
        limit: int = 20,
    ) -> list[Job]:
        query = select(jobs).where(*_scoped(scope))
        if statuses:
            query = query.where(jobs.c.status.in_(tuple(statuses)))
        if operation is not None:
            query = query.where(jobs.c.operation == operation)
        if batch_id is not None:
            query = query.where(jobs.c.batch_id == batch_id)
        async with self.tx.connect() as connection:
            if after is not None:
                cursor = (
                    await connection.execute(
                        select(jobs.c.created_at, jobs.c.id).where(jobs.c.id == after, *_scoped(scope))
                    )
                ).first()
                if cursor is not None:
                    query = query.where(
                        or_(
                            jobs.c.created_at < cursor.created_at,
                            and_(jobs.c.created_at == cursor.created_at, jobs.c.id < cursor.id),
                        )
                    )
            query = query.order_by(jobs.c.created_at.desc(), jobs.c.id.desc()).limit(limit)
            rows = (await connection.execute(query)).all()
        return [_row(row) for row in rows]


async def _ended(connection: AsyncConnection, job: Job) -> None:
    """What a terminal transition writes with it: the webhook message, the batch's progress."""
    await add_message(connection, job)
    if job.batch_id is not None:
        column = batches.c.completed if job.status == "succeeded" else batches.c.failed
        await connection.execute(
            update(batches).where(batches.c.id == job.batch_id).values({column: column + 1})
        )


def _held(job_id: str, owner: str) -> tuple[ColumnElement[bool], ...]:
    return (jobs.c.id == job_id, jobs.c.lease_owner == owner, jobs.c.status == "running")


def _scoped(scope: TenantScope) -> tuple[ColumnElement[bool], ...]:
    return () if scope is None else (jobs.c.tenant == scope,)


def job_values(job: NewJob, now: float) -> dict[str, Any]:
    """The row of a new job, queued now (a batch inserts its lines' rows with its own)."""
    return {
        "id": new_job_id(),
        "tenant": job.tenant,
        "principal": job.principal,
        "operation": job.operation,
        "model": job.model,
        "request": job.request,
        "status": "queued",
        "priority": job.priority,
        "attempts": 0,
        "max_attempts": job.max_attempts,
        "run_after": now,
        "callback_url": job.callback_url,
        "idempotency_key": job.idempotency_key,
        "request_hash": job.request_hash,
        "metadata": job.metadata,
        "batch_id": job.batch_id,
        "batch_index": job.batch_index,
        "created_at": now,
    }


def _job(values: dict[str, Any]) -> Job:
    return Job(**values)


def _row(row: Row[Any]) -> Job:
    data = row._mapping  # noqa: SLF001 - SQLAlchemy's public row mapping
    return Job(**{name: data[name] for name in _COLUMNS})
