"""Everything asynchronous work needs, built once from ``jobs:`` by the runtime.

:class:`JobSystem` owns the operation registry, the webhook target policy, the stores of the job
tables (queue, files, batches, webhook secrets and deliverer) and — when ``jobs.worker.enabled`` —
the worker of this process. The gateway routes read it; ``interlace serve`` and ``interlace worker``
start it with their runtime.

The stores import SQLAlchemy, so they are built on first use (:mod:`.stores`): a gateway that
serves chat, with its worker polling an empty queue through plain SQL (:mod:`.due`), never loads it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from interlace.gateway.recording import Recorder
from interlace.jobs.functions import FunctionExecutor
from interlace.jobs.operations import Executors
from interlace.jobs.stores import LazyStores
from interlace.jobs.webhooks.targets import TargetPolicy
from interlace.jobs.worker import Worker

if TYPE_CHECKING:
    from interlace.config.jobs import JobsConfig
    from interlace.functions.runner import FunctionRunner
    from interlace.jobs.batches import Batches
    from interlace.jobs.files import Files
    from interlace.jobs.store import SqlJobQueue
    from interlace.jobs.webhooks.delivery import Deliverer
    from interlace.jobs.webhooks.secret_store import WebhookSecrets
    from interlace.observability.observer import RequestObserver
    from interlace.routing.router import Router
    from interlace.security.audit.entry import ContentMode
    from interlace.security.gate import Gate
    from interlace.store.database import Database

__all__ = ["JobSystem"]


class JobSystem:
    def __init__(self, config: JobsConfig, database: Database) -> None:
        self.config = config
        self.database = database
        self.executors = Executors()
        self.targets = TargetPolicy(config.webhooks.allow, allow_public=config.webhooks.allow_public)
        self.stores = LazyStores(config, database, self.executors, self.targets)
        self.worker: Worker | None = None

    @property
    def queue(self) -> SqlJobQueue:
        return self.stores().queue

    @property
    def files(self) -> Files:
        return self.stores().files

    @property
    def batches(self) -> Batches:
        return self.stores().batches

    @property
    def secrets(self) -> WebhookSecrets:
        return self.stores().secrets

    @property
    def deliverer(self) -> Deliverer:
        return self.stores().deliverer

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
            stores=self.stores,
            database=self.database,
            executors=self.executors,
            router=router,
            gate=gate,
            recorder=Recorder(
                observers, router.routes, capture_content=capture_content, audit_content=audit_content
            ),
            config=self.config,
            max_deadline=max_deadline,
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
        stores = self.stores.built
        if stores is not None:
            await stores.deliverer.aclose()
