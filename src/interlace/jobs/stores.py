"""The stores of the job tables, built (and SQLAlchemy imported) on first use.

The queue, files, batches, webhook secrets and the deliverer build their statements with SQLAlchemy,
which costs ~19 MiB of resident memory for the life of a process once imported. A gateway that serves
chat and never sees a job, a file or a batch must not pay for them, so :class:`LazyStores` imports
their modules and builds them the first time something asks: a submission, a listing, an upload,
a webhook secret, or the worker finding due work (:mod:`.due`). They share one
:class:`~interlace.jobs.transactions.Transactions`: one writer at a time on SQLite for every job table.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from interlace.config.jobs import JobsConfig
    from interlace.jobs.batches import Batches
    from interlace.jobs.files import Files
    from interlace.jobs.operations import Executors
    from interlace.jobs.store import SqlJobQueue
    from interlace.jobs.webhooks.delivery import Deliverer
    from interlace.jobs.webhooks.secret_store import WebhookSecrets
    from interlace.jobs.webhooks.targets import TargetPolicy
    from interlace.store.database import Database

__all__ = ["LazyStores", "Stores"]


@dataclass(frozen=True, slots=True)
class Stores:
    """The job tables' stores, built."""

    queue: SqlJobQueue
    files: Files
    batches: Batches
    secrets: WebhookSecrets
    deliverer: Deliverer


class LazyStores:
    """:class:`Stores`, built by the first call (see the module's notes)."""

    def __init__(
        self, config: JobsConfig, database: Database, executors: Executors, targets: TargetPolicy
    ) -> None:
        self._config = config
        self._database = database
        self._executors = executors
        self._targets = targets
        self._stores: Stores | None = None

    @property
    def built(self) -> Stores | None:
        """The stores if a call built them already, else None (nothing imported, nothing built)."""
        return self._stores

    def __call__(self) -> Stores:
        if self._stores is None:
            self._stores = self._build()
        return self._stores

    def _build(self) -> Stores:
        # deferred on purpose (see the module's notes)
        from interlace.jobs.batches import Batches  # noqa: PLC0415
        from interlace.jobs.files import Files  # noqa: PLC0415
        from interlace.jobs.store import SqlJobQueue  # noqa: PLC0415
        from interlace.jobs.transactions import Transactions  # noqa: PLC0415
        from interlace.jobs.webhooks.delivery import Deliverer  # noqa: PLC0415
        from interlace.jobs.webhooks.secret_store import WebhookSecrets  # noqa: PLC0415

        config = self._config
        tx = Transactions(self._database)
        files = Files(tx, self._executors)
        secrets = WebhookSecrets(tx)
        return Stores(
            queue=SqlJobQueue(
                tx, lease_seconds=config.lease_seconds, tenant_concurrency=config.tenant_concurrency
            ),
            files=files,
            batches=Batches(tx, self._executors, files, max_attempts=config.max_attempts),
            secrets=secrets,
            deliverer=Deliverer(tx, secrets, self._targets, config.webhooks),
        )
