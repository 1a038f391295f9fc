"""The durable job queue: what the gateway and the workers call, whatever stores it.

A job's life::

    queued ──claim──▶ running ──complete──▶ succeeded
      ▲                 │ ├────fail (not retryable)────▶ failed
      │                 │ └────fail (attempts left)──▶ queued (run_after = now + backoff)
      │                 └─lease expired──▶ claimable again; past max_attempts ▶ dead (dead letters)
      └── retry (operator) ◀── dead / failed           queued/running ──cancel──▶ cancelled

A claim is a lease: the claiming worker renews it with :meth:`JobQueue.heartbeat`; a worker that
dies stops renewing and another worker claims the job when the lease expires. Every transition
after a claim names the lease owner, so a worker whose lease was taken over cannot overwrite the
result its successor stored: the result is stored once. A job's terminal transition writes its
webhook message (:mod:`interlace.jobs.webhooks`) in the same transaction.

Reads take a *tenant scope*: a tenant id (a caller sees only its tenant's jobs; another tenant's
job is "not found") or ``None`` for the operator, who sees every tenant's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, Literal, Protocol

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = [
    "ACTIVE",
    "TERMINAL",
    "Job",
    "JobQueue",
    "JobStatus",
    "NewJob",
    "TenantScope",
]

JobStatus = Literal["queued", "running", "succeeded", "failed", "cancelled", "dead"]

ACTIVE: Final = ("queued", "running")
TERMINAL: Final = ("succeeded", "failed", "cancelled", "dead")

TenantScope = str | None
"""A tenant id, or ``None`` for the operator (every tenant)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class NewJob:
    """A job to accept: validated, not yet stored."""

    tenant: str
    principal: dict[str, Any]
    """The submitting :class:`~interlace.core.principal.Principal`, as stored (no secret in it)."""
    operation: str
    model: str
    request: dict[str, Any]
    priority: int = 0
    max_attempts: int = 5
    callback_url: str | None = None
    idempotency_key: str | None = None
    request_hash: str | None = None
    metadata: dict[str, str] | None = None
    batch_id: str | None = None
    batch_index: int | None = None


@dataclass(slots=True, kw_only=True)
class Job:
    id: str
    tenant: str
    principal: dict[str, Any]
    operation: str
    model: str
    request: dict[str, Any]
    status: JobStatus
    priority: int
    attempts: int
    max_attempts: int
    run_after: float
    created_at: float
    lease_owner: str | None = None
    lease_expires: float | None = None
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    callback_url: str | None = None
    idempotency_key: str | None = None
    request_hash: str | None = None
    metadata: dict[str, str] | None = field(default=None)
    batch_id: str | None = None
    batch_index: int | None = None
    started_at: float | None = None
    finished_at: float | None = None

    def to_api(self) -> dict[str, Any]:
        """The job as ``GET /v1/jobs/{id}`` shows it."""
        return {
            "id": self.id,
            "object": "job",
            "status": self.status,
            "operation": self.operation,
            "model": self.model,
            "priority": self.priority,
            "attempts": self.attempts,
            "max_attempts": self.max_attempts,
            "created_at": int(self.created_at),
            "started_at": _seconds(self.started_at),
            "finished_at": _seconds(self.finished_at),
            "callback_url": self.callback_url,
            "metadata": self.metadata or {},
            "batch_id": self.batch_id,
            "result": self.result,
            "error": self.error,
        }


class JobQueue(Protocol):
    async def enqueue(self, job: NewJob) -> tuple[Job, bool]:
        """Store ``job`` (committed on return); with an idempotency key already used, the stored job
        and False. Raises :class:`~interlace.core.errors.IdempotencyConflict` for another body."""
        ...

    async def claim(self, owner: str, *, limit: int) -> list[Job]:
        """Up to ``limit`` due jobs, highest priority first, leased to ``owner``."""
        ...

    async def heartbeat(self, job_id: str, owner: str) -> bool:
        """Renew the lease; False when ``owner`` lost it (expired and re-claimed, or cancelled)."""
        ...

    async def complete(self, job_id: str, owner: str, result: dict[str, Any]) -> Job | None:
        """Store the result and mark the job succeeded; None when ``owner`` no longer holds it."""
        ...

    async def fail(
        self, job_id: str, owner: str, error: dict[str, Any], *, retryable: bool, delay: float
    ) -> Job | None:
        """Retry after ``delay`` (retryable, attempts left), else mark failed or dead."""
        ...

    async def release(self, owner: str) -> int:
        """Give back every job ``owner`` holds (a worker stopping), the attempt not counted."""
        ...

    async def postpone(self, job_id: str, owner: str, *, delay: float) -> Job | None:
        """Give ``job`` back for ``delay`` seconds, the attempt not counted (the gateway was not ready
        to run it: a local model still loading); None when ``owner`` no longer holds it."""
        ...

    async def reap(self) -> list[Job]:
        """Move jobs whose lease expired on their last attempt to dead letters."""
        ...

    async def cancel(self, job_id: str, scope: TenantScope) -> Job | None:
        """Cancel a queued or running job; the job as it is now, None when not found in ``scope``."""
        ...

    async def retry(self, job_id: str, scope: TenantScope) -> Job | None:
        """Queue a failed or dead job again with fresh attempts."""
        ...

    async def get(self, job_id: str, scope: TenantScope) -> Job | None: ...

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
        """Newest first; ``after`` is the last id of the previous page."""
        ...


def _seconds(value: float | None) -> int | None:
    return None if value is None else int(value)
