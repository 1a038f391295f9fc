"""Is anything due? One plain-SQL probe of the job tables, before a worker's poll touches SQLAlchemy.

An idle worker polls every ``jobs.worker.poll_interval``. Its full pass (reap, claim, deliver) builds
its statements with SQLAlchemy, which costs ~19 MiB of resident memory for the life of the process
once imported, and on SQLite a claim takes the file's write lock even when the queue is empty. So an
idle poll first asks, in one statement through the driver's own connection
(:attr:`~interlace.store.database.Database.pool`), whether any row is due:

* ``jobs``: a queued job whose ``run_after`` passed (claimable), or a running one whose lease expired
  (claimable again with attempts left, else reaped to the dead letters): what
  :meth:`~interlace.jobs.store.SqlJobQueue.claim` and :meth:`~interlace.jobs.store.SqlJobQueue.reap`
  look for;
* ``webhook_messages``: a pending message whose ``next_attempt_at`` passed, or a sending one whose
  lease expired: what :meth:`~interlace.jobs.webhooks.delivery.Deliverer.deliver_due` claims.

Each condition is an ``EXISTS`` of its own, so each can use its table's ``(status, …)`` index. Times are
UNIX seconds, as the stores write them. Nothing is cached between polls: a job another process
queued is seen at the next one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from interlace.store.driver_pool import DriverPool

__all__ = ["Due", "probe"]

_STATEMENT: Final = (
    "SELECT"
    " EXISTS (SELECT 1 FROM jobs WHERE status = 'queued' AND run_after <= :now)"
    " OR EXISTS (SELECT 1 FROM jobs WHERE status = 'running' AND lease_expires < :now),"
    " EXISTS (SELECT 1 FROM webhook_messages WHERE status = 'pending' AND next_attempt_at <= :now)"
    " OR EXISTS (SELECT 1 FROM webhook_messages WHERE status = 'sending' AND lease_expires < :now)"
)
SQLITE: Final = _STATEMENT.replace(":now", "?1")
POSTGRES: Final = _STATEMENT.replace(":now", "$1")


@dataclass(frozen=True, slots=True)
class Due:
    """What a probe found due: job rows to claim or reap, webhook messages to deliver."""

    jobs: bool
    webhooks: bool

    def __bool__(self) -> bool:
        return self.jobs or self.webhooks


async def probe(pool: DriverPool, now: float) -> Due:
    """Whether any job or webhook message is due at ``now`` (UNIX seconds)."""
    ((jobs, webhooks),) = await pool.fetch(SQLITE if pool.sqlite else POSTGRES, now)
    return Due(jobs=bool(jobs), webhooks=bool(webhooks))
