"""Everything asynchronous work needs, built once from ``jobs:`` by the runtime.

:class:`JobSystem` owns the queue, the operation registry, files and batches, the webhook secrets,
target policy and deliverer, and — when ``jobs.worker.enabled`` — the worker of this process. The
gateway routes read it; ``interlace serve`` and ``interlace worker`` start it with their runtime.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from interlace.gateway.recording import Recorder
from interlace.jobs.batches import Batches
from interlace.jobs.files import Files
from interlace.jobs.functions import FunctionExecutor
from interlace.jobs.operations import Executors
from interlace.jobs.store import SqlJobQueue
from interlace.jobs.transactions import Transactions
from interlace.jobs.webhooks.delivery import Deliverer
from interlace.jobs.webhooks.secret_store import WebhookSecrets
from interlace.jobs.webhooks.targets import TargetPolicy
from interlace.jobs.worker import Worker

if TYPE_CHECKING:
    from interlace.config.jobs import JobsConfig
    from interlace.functions.runner import FunctionRunner
    from interlace.observability.observer import RequestObserver
    from interlace.routing.router import Router
    from interlace.security.audit.entry import ContentMode
    from interlace.security.gate import Gate
    from interlace.store.database import Database

__all__ = ["JobSystem"]


class JobSystem:
    def __init__(self, config: JobsConfig, database: Database) -> None:
        self.config = config
        tx = Transactions(database)  # one writer at a time on SQLite, shared by every job table
        self.queue = SqlJobQueue(
            tx, lease_seconds=config.lease_seconds, tenant_concurrency=config.tenant_concurrency
        )
        self.executors = Executors()
        self.files = Files(tx, self.executors)
        self.batches = Batches(tx, self.executors, self.files, max_attempts=config.max_attempts)
        self.secrets = WebhookSecrets(tx)
        self.targets = TargetPolicy(config.webhooks.allow, allow_public=config.webhooks.allow_public)
        self.deliverer = Deliverer(tx, self.secrets, self.targets, config.webhooks)
        self.worker: Worker | None = None

    def start(
        self,
        *,
        router: Router,
        gate: Gate,
        observers: RequestObserver,
        max_deadline: float,
        capture_content: bool = False,
        audit_content: ContentMode = "none",
        functions: FunctionRunner | None = None,
    ) -> None:
        """Start this process's worker, when ``jobs.worker.enabled`` (needs a running event loop).

        With ``functions``, AI functions become an operation jobs and batches can carry (``function``),
        whether or not this process runs a worker (it may only accept submissions).
        """
        if functions is not None:
            self.executors.register(FunctionExecutor(functions))
        if not self.config.worker.enabled or self.worker is not None:
            return
        self.worker = Worker(
            queue=self.queue,
            executors=self.executors,
            router=router,
            gate=gate,
            recorder=Recorder(
                observers, router.routes, capture_content=capture_content, audit_content=audit_content
            ),
            config=self.config,
            max_deadline=max_deadline,
            deliverer=self.deliverer,
            batches=self.batches,
        )
        self.worker.start()

    def notify(self) -> None:
        """New jobs were queued by this process: its worker (if any) polls now."""
        if self.worker is not None:
            self.worker.notify()

    def cancelled(self, job_id: str) -> None:
        """A job was cancelled: stop its attempt if this process runs it (others notice by heartbeat)."""
        if self.worker is not None:
            self.worker.abandon(job_id)

    async def aclose(self) -> None:
        """Stop the worker (its running jobs' leases given back) and the deliverer's connections."""
        if self.worker is not None:
            await self.worker.aclose()
            self.worker = None
        await self.deliverer.aclose()
