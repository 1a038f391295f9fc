"""``/v1/batches``: the OpenAI Batch API over durable jobs (:mod:`interlace.jobs.batches`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import Field

from interlace.config._base import Strict
from interlace.core.errors import NotFound
from interlace.gateway.bodies import read_json, validate
from interlace.gateway.routes._base import json_response
from interlace.gateway.routes.jobs import allowed, page, query_limit
from interlace.jobs.principals import tenant_scope

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response

    from interlace.jobs.system import JobSystem

__all__ = ["BatchRequest", "BatchRoutes"]


class BatchRequest(Strict):
    input_file_id: str
    endpoint: str
    completion_window: str = "24h"
    metadata: dict[str, str] | None = Field(None, max_length=16)


class BatchRoutes:
    def __init__(self, jobs: JobSystem, *, max_body_bytes: int) -> None:
        self.jobs = jobs
        self.max_body_bytes = max_body_bytes

    async def create(self, request: Request) -> Response:
        principal = allowed(request, "batches")
        body = validate(BatchRequest, await read_json(request, self.max_body_bytes))
        answer = await self.jobs.batches.create(
            principal,
            input_file_id=body.input_file_id,
            endpoint=body.endpoint,
            completion_window=body.completion_window,
            metadata=body.metadata,
        )
        self.jobs.notify()
        return json_response(answer)

    async def retrieve(self, request: Request) -> Response:
        principal = allowed(request, "batches")
        found = await self.jobs.batches.get(request.path_params["batch_id"], tenant_scope(principal))
        if found is None:
            raise _not_found(request)
        return json_response(found)

    async def cancel(self, request: Request) -> Response:
        principal = allowed(request, "batches")
        found = await self.jobs.batches.cancel(request.path_params["batch_id"], tenant_scope(principal))
        if found is None:
            raise _not_found(request)
        return json_response(found)

    async def list(self, request: Request) -> Response:
        principal = allowed(request, "batches")
        limit = query_limit(request.query_params.get("limit"))
        found = await self.jobs.batches.list(
            tenant_scope(principal), after=request.query_params.get("after"), limit=limit + 1
        )
        return json_response(page(found, limit))


def _not_found(request: Request) -> NotFound:
    return NotFound(
        f"No batch with id '{request.path_params['batch_id']}'.", param="batch_id", code="batch_not_found"
    )
