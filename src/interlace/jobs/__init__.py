"""Asynchronous work: durable jobs, batches over them, and the signed webhooks they send.

The names below are imported on first use (the module's ``__getattr__``): importing one module of
the package (the principals' helpers for a route, the job system for the runtime) must not import
the SQLAlchemy stores with it (see :mod:`interlace.jobs.stores`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from interlace.core.lazy import lazy_attributes

if TYPE_CHECKING:
    from interlace.jobs.batches import Batches
    from interlace.jobs.files import Files
    from interlace.jobs.operations import Executor, Executors
    from interlace.jobs.queue import Job, JobQueue, NewJob
    from interlace.jobs.store import SqlJobQueue
    from interlace.jobs.system import JobSystem
    from interlace.jobs.worker import Worker

__all__ = [
    "Batches",
    "Executor",
    "Executors",
    "Files",
    "Job",
    "JobQueue",
    "JobSystem",
    "NewJob",
    "SqlJobQueue",
    "Worker",
]

__getattr__ = lazy_attributes(
    __name__,
    {
        "Batches": "interlace.jobs.batches",
        "Executor": "interlace.jobs.operations",
        "Executors": "interlace.jobs.operations",
        "Files": "interlace.jobs.files",
        "Job": "interlace.jobs.queue",
        "JobQueue": "interlace.jobs.queue",
        "JobSystem": "interlace.jobs.system",
        "NewJob": "interlace.jobs.queue",
        "SqlJobQueue": "interlace.jobs.store",
        "Worker": "interlace.jobs.worker",
    },
)
