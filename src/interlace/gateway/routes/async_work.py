"""The routes of asynchronous work: jobs, their webhooks, files and batches (``/v1/jobs`` …)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.routing import Route

from interlace.gateway.routes.batches import BatchRoutes
from interlace.gateway.routes.files import FileRoutes
from interlace.gateway.routes.jobs import JobRoutes

if TYPE_CHECKING:
    from interlace.jobs.system import JobSystem

__all__ = ["async_routes"]


def async_routes(jobs: JobSystem, *, max_body_bytes: int) -> list[Route]:
    job = JobRoutes(jobs, max_body_bytes=max_body_bytes)
    files = FileRoutes(jobs, max_body_bytes=max_body_bytes)
    batches = BatchRoutes(jobs, max_body_bytes=max_body_bytes)
    return [
        Route("/v1/jobs", job.create, methods=["POST"]),
        Route("/v1/jobs", job.list, methods=["GET"]),
        Route("/v1/jobs/{job_id}", job.retrieve, methods=["GET"]),
        Route("/v1/jobs/{job_id}", job.cancel, methods=["DELETE"]),
        Route("/v1/jobs/{job_id}/deliveries", job.deliveries, methods=["GET"]),
        Route("/v1/jobs/{job_id}/deliveries/redeliver", job.redeliver, methods=["POST"]),
        Route("/v1/webhooks/secret", job.webhook_secret, methods=["GET"]),
        Route("/v1/files", files.create, methods=["POST"]),
        Route("/v1/files", files.list, methods=["GET"]),
        Route("/v1/files/{file_id}", files.retrieve, methods=["GET"]),
        Route("/v1/files/{file_id}", files.delete, methods=["DELETE"]),
        Route("/v1/files/{file_id}/content", files.content, methods=["GET"]),
        Route("/v1/batches", batches.create, methods=["POST"]),
        Route("/v1/batches", batches.list, methods=["GET"]),
        Route("/v1/batches/{batch_id}", batches.retrieve, methods=["GET"]),
        Route("/v1/batches/{batch_id}/cancel", batches.cancel, methods=["POST"]),
    ]
