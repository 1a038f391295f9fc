"""Asynchronous work: durable jobs, batches over them, and the signed webhooks they send.

The names below are imported on first use (the module's ``__getattr__``): importing one module of
the package (the principals' helpers for a route, the job system for the runtime) must not import
the SQLAlchemy stores with it (see :mod:`interlace.jobs.stores`).
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any, Final

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

_MODULES: Final = {
    "Batches": "batches",
    "Executor": "operations",
    "Executors": "operations",
    "Files": "files",
    "Job": "queue",
    "JobQueue": "queue",
    "JobSystem": "system",
    "NewJob": "queue",
    "SqlJobQueue": "store",
    "Worker": "worker",
}


def __getattr__(name: str) -> Any:
    if name not in _MODULES:
        msg = f"module {__name__!r} has no attribute {name!r}"
        raise AttributeError(msg)
    return getattr(import_module(f"{__name__}.{_MODULES[name]}"), name)
