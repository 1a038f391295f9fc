"""Asynchronous work: durable jobs, batches over them, and the signed webhooks they send."""

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
