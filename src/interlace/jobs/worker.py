"""A worker: claims jobs, runs them through the gate and the router, stores results, sends webhooks.

One loop per worker process (``interlace serve`` runs one in-process; ``interlace worker`` processes
share a Postgres queue)::

    loop: [idle: anything due? (plain SQL)] → reap expired last attempts → claim up to the free slots
          → deliver due webhooks → sleep until the poll interval, a notify() or a job's end
    job:  decode → Gate.admit (as the submitting principal) → router → complete | fail (retry, dead)
          (a self-gated executor — an AI function — admits itself inside its run)
          a heartbeat renews the lease every lease/3 s; a lost lease (cancelled, re-claimed) stops it

A job's execution is recorded like a request: one :class:`RequestRecord` per attempt to the
runtime's observers (request id ``<job id>-<attempt>``), and its admission settled from it.

The queue, the batches and the deliverer are SQLAlchemy stores, built on first use
(:mod:`.stores`). An idle worker (no job running here, no :meth:`Worker.notify` since its last poll)
first asks the database, in plain SQL through the driver's pool, whether any job or webhook message
is due (:mod:`.due`), and touches the stores only for what is: a gateway whose queue stays empty
never imports SQLAlchemy, and on SQLite its polls never take the write lock. A job queued by another
process is due for the probe, so it is claimed at the next poll as before. A probe that fails (the
database is down) is a failed poll: logged, and tried again at the next one.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import socket
import time
from typing import TYPE_CHECKING, Any, Final

from interlace.core.errors import (
    InterlaceError,
    ServiceUnavailable,
    UpstreamError,
    UpstreamRateLimited,
)
from interlace.gateway.identity import PRINCIPAL_SCOPE_KEY
from interlace.gateway.middleware.request_id import REQUEST_ID_SCOPE_KEY
from interlace.gateway.recording import Recording
from interlace.jobs.due import Due, probe
from interlace.jobs.principals import principal_from_dict
from interlace.routing.context import RouteContext
from interlace.security.gate import Call

if TYPE_CHECKING:
    from interlace.config.jobs import JobsConfig
    from interlace.gateway.recording import Recorder
    from interlace.jobs.operations import Executors
    from interlace.jobs.queue import Job, JobQueue
    from interlace.jobs.stores import LazyStores
    from interlace.jobs.webhooks.delivery import Deliverer
    from interlace.routing.router import Router
    from interlace.security.gate import Gate
    from interlace.store.database import Database

__all__ = ["RETRYABLE_STATUSES", "Worker", "worker_id"]

log = logging.getLogger("interlace.jobs.worker")

NOT_READY = ServiceUnavailable.default_code
_NOT_READY_DELAY = 0.5
"""Seconds a job waits when the gateway is not ready for it and says no Retry-After."""

RETRYABLE_STATUSES: Final = frozenset({408, 425, 429, 500, 502, 503, 504})
"""Statuses of errors (a quota's 429, a full bulkhead's 503) that another attempt later may cure."""

_EVERYTHING: Final = Due(jobs=True, webhooks=True)
"""A pass that does not ask first: notified, or with jobs running here (see the module's notes)."""


def worker_id() -> str:
    """This process's lease owner name: host, pid and a random suffix (a restarted pid is another)."""
    return f"{socket.gethostname()[:32]}:{os.getpid()}:{os.urandom(3).hex()}"


class Worker:
    def __init__(
        self,
        *,
        stores: LazyStores,
        database: Database,
        executors: Executors,
        router: Router,
        gate: Gate,
        recorder: Recorder,
        config: JobsConfig,
        max_deadline: float,
        owner: str | None = None,
    ) -> None:
        self.stores = stores
        self.database = database
        self.executors = executors
        self.router = router
        self.gate = gate
        self.recorder = recorder
        self.config = config
        self.max_deadline = max_deadline
        self.owner = owner or worker_id()
        self.concurrency = config.worker.concurrency
        self._running: dict[str, asyncio.Task[None]] = {}
        self._attempts: dict[str, asyncio.Task[Job | None]] = {}
        self._wake = asyncio.Event()
        self._notified = False
        self._stopping = False
        self._loop: asyncio.Task[None] | None = None
        self._delivering: asyncio.Task[int] | None = None

    @property
    def queue(self) -> JobQueue:
        return self.stores().queue

    def start(self) -> None:
        self._loop = asyncio.create_task(self.run(), name=f"jobs-worker {self.owner}")

    def notify(self) -> None:
        """New work was queued (by this process's gateway): poll now instead of at the next tick."""
        self._notified = True
        self._wake.set()

    async def run(self) -> None:
        while not self._stopping:
            self._wake.clear()  # before the tick: a wake-up during it (a job ended) polls again at once
            try:
                await self.tick()
            except Exception:  # a database hiccup must not end the worker: try again next tick
                log.exception("job worker %s: poll failed", self.owner)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.config.worker.poll_interval)

    async def tick(self) -> None:
        """One pass: dead letters for expired last attempts, new claims, due webhooks.

        Idle and not notified, only what the probe finds due (see the module's notes).
        """
        notified, self._notified = self._notified, False
        due = _EVERYTHING if notified or self._running else await probe(self.database.pool, time.time())
        if due.jobs:
            queue = self.stores().queue
            for job in await queue.reap():
                await self._ended(job)
            free = self.concurrency - len(self._running)
            if free > 0:
                for job in await queue.claim(self.owner, limit=free):
                    task = asyncio.create_task(self._execute(job), name=f"job {job.id}")
                    self._running[job.id] = task
                    task.add_done_callback(functools.partial(self._done, job.id))
        if due.webhooks and (self._delivering is None or self._delivering.done()):
            # in its own task: a slow receiver (up to jobs.webhooks.timeout) must not delay claims
            self._delivering = asyncio.create_task(self._deliver(self.stores().deliverer))

    async def _deliver(self, deliverer: Deliverer) -> int:
        try:
            return await deliverer.deliver_due(self.owner)
        except Exception:  # retried at the next tick; the messages' leases expire meanwhile
            log.exception("job worker %s: webhook delivery failed", self.owner)
            return 0

    def _done(self, job_id: str, task: asyncio.Task[None]) -> None:
        del task
        self._running.pop(job_id, None)
        self._wake.set()

    def abandon(self, job_id: str) -> None:
        """Stop the attempt of ``job_id`` if it runs here (it was cancelled): nothing is stored."""
        work = self._attempts.get(job_id)
        if work is not None:
            work.cancel()

    async def _execute(self, job: Job) -> None:
        work = asyncio.create_task(self._attempt(job))
        self._attempts[job.id] = work
        beat = asyncio.create_task(self._heartbeat(job, work))
        try:
            outcome = await work
        except asyncio.CancelledError:
            if self._stopping:
                raise
            log.info("job %s: lease lost (cancelled or taken over); its attempt stopped", job.id)
            return
        finally:
            self._attempts.pop(job.id, None)
            beat.cancel()
            await asyncio.wait([beat])  # not `await beat`: that would swallow our own cancellation
        if outcome is not None:
            await self._ended(outcome)

    async def _heartbeat(self, job: Job, work: asyncio.Task[Job | None]) -> None:
        interval = self.config.lease_seconds / 3
        while True:
            await asyncio.sleep(interval)
            try:
                held = await self.queue.heartbeat(job.id, self.owner)
            except Exception:  # the next beat may get through before the lease runs out
                log.exception("job %s: heartbeat failed", job.id)
                continue
            if not held:
                work.cancel()
                return

    async def _attempt(self, job: Job) -> Job | None:
        """Run ``job`` once; the job as stored after (None when the lease was lost meanwhile)."""
        try:
            answer = await self._run(job)
        except ServiceUnavailable as exc:
            if exc.code != NOT_READY:
                return await self._failed(job, exc)
            # the gateway itself is not ready (a local model still loading): not the job's attempt
            return await self.queue.postpone(job.id, self.owner, delay=_retry_after(exc) or _NOT_READY_DELAY)
        except InterlaceError as exc:
            return await self._failed(job, exc)
        except Exception as exc:  # a bug: retried (it may be transient), then dead letters
            log.exception("job %s: attempt %d failed", job.id, job.attempts)
            error = {
                "message": f"internal error: {type(exc).__name__}",
                "code": "internal_error",
                "status": 500,
            }
            delay = self.config.backoff.delay(job.attempts)
            return await self.queue.fail(job.id, self.owner, error, retryable=True, delay=delay)
        return await self.queue.complete(job.id, self.owner, answer)

    async def _failed(self, job: Job, exc: InterlaceError) -> Job | None:
        """Retry after the backoff (never before a Retry-After), or fail / dead-letter the job."""
        delay = self.config.backoff.delay(job.attempts)
        wait = _retry_after(exc)
        if wait is not None:  # a 429's, or a cooling-down deployment's, or a quota's Retry-After
            # never before it, never past jobs.backoff.maximum
            delay = min(max(delay, wait), self.config.backoff.maximum)
        error = {**exc.to_openai()["error"], "status": exc.status}
        return await self.queue.fail(job.id, self.owner, error, retryable=_retryable(exc), delay=delay)

    async def _run(self, job: Job) -> dict[str, Any]:
        executor = self.executors.get(job.operation)
        principal = principal_from_dict(job.principal)
        body = job.request
        scope: dict[str, Any] = {
            "type": "job",
            "headers": [],
            REQUEST_ID_SCOPE_KEY: f"{job.id}-{job.attempts}",
            PRINCIPAL_SCOPE_KEY: principal,
        }
        with Recording(self.recorder, scope, executor.name, executor.path) as rec:
            user = body.get("user")
            ctx = rec.route(
                RouteContext(
                    deadline=time.monotonic() + self.max_deadline,
                    principal=principal,
                    user=user if isinstance(user, str) else None,
                    metadata=dict(job.metadata or {}),
                ),
                body,
            )
            if not executor.gated:  # it admits itself while it runs (an AI function)
                return await executor.execute(principal, ctx, rec, body)
            op = executor.decode(body)
            admission = await self.gate.admit(Call(principal, executor.endpoint, op, ctx))
            rec.admission = admission
            return await executor.run(self.router, admission, ctx, rec, body)

    async def _ended(self, job: Job) -> None:
        """After a transition: a batch whose last line ended is finalized; webhooks go out soon."""
        if job.status in {"succeeded", "failed", "dead", "cancelled"}:
            if job.batch_id is not None:
                await self.stores().batches.finalize_if_done(job.batch_id)
            if job.callback_url is not None:
                self._wake.set()

    async def aclose(self) -> None:
        """Stop claiming; stop the jobs running here and give their leases back for another worker."""
        self._stopping = True
        self._wake.set()
        if self._loop is not None:
            self._loop.cancel()
            await asyncio.wait([self._loop])  # a cancellation of the caller still propagates
        if self._delivering is not None:  # an attempt cut short is re-sent (same webhook-id) later
            self._delivering.cancel()
            await asyncio.wait([self._delivering])
        running = list(self._running.values())
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)
        stores = self.stores.built
        if stores is None:  # never claimed anything: no lease to give back
            return
        try:
            await stores.queue.release(self.owner)
        except Exception:  # leases expire on their own: another worker re-claims them later
            log.exception("job worker %s: could not release its leases", self.owner)


def _retry_after(exc: InterlaceError) -> float | None:
    if isinstance(exc, UpstreamRateLimited) and exc.retry_after is not None:
        return exc.retry_after
    try:
        return float(exc.headers["retry-after"])
    except (KeyError, ValueError):
        return None


def _retryable(exc: InterlaceError) -> bool:
    if isinstance(exc, UpstreamError):
        return exc.retryable
    return exc.status in RETRYABLE_STATUSES
