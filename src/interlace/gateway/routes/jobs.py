"""``/v1/jobs``: submit any gateway operation as a durable job, read it, cancel it, see its webhooks.

``POST /v1/jobs`` validates the operation's request as its sync endpoint would (400 naming the field),
checks the callback target, and answers ``202`` with the job and a ``Location`` only once the job row
is committed. An ``Idempotency-Key`` makes a repeated submission return the same job
(``idempotent-replayed: true``); the same key with another body is a 422. Reads are scoped to the
caller's tenant: another tenant's job is a 404, exactly like a job that does not exist.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

import orjson
from pydantic import Field
from starlette.responses import Response

from interlace.config._base import Strict
from interlace.core.errors import Conflict, InterlaceError, NotFound, PermissionDenied, RequestError
from interlace.gateway.bodies import read_json, validate
from interlace.gateway.identity import principal_of
from interlace.gateway.routes._base import json_response
from interlace.jobs.principals import principal_to_dict, tenant_key, tenant_scope
from interlace.jobs.queue import TERMINAL, NewJob

if TYPE_CHECKING:
    from starlette.requests import Request

    from interlace.core.principal import Principal
    from interlace.jobs.system import JobSystem

__all__ = ["JobRoutes", "JobSubmission", "allowed", "page", "query_limit"]

_MAX_KEY = 255


class JobSubmission(Strict):
    operation: str = Field(description="chat, embeddings, classify or function.")
    request: dict[str, Any] = Field(description="The body the operation's sync endpoint takes.")
    callback_url: str | None = Field(None, max_length=2048)
    priority: int = Field(0, ge=-100, le=100, description="Higher runs first.")
    metadata: dict[str, str] | None = None


class JobRoutes:
    def __init__(self, jobs: JobSystem, *, max_body_bytes: int) -> None:
        self.jobs = jobs
        self.max_body_bytes = max_body_bytes

    async def create(self, request: Request) -> Response:
        principal = allowed(request, "jobs")
        body = await read_json(request, self.max_body_bytes)
        submission = validate(JobSubmission, body)
        executor = self.jobs.executors.get(submission.operation)
        try:
            op = executor.decode(submission.request)
        except InterlaceError as exc:
            raise _in_request(exc) from None
        if not principal.may_call(executor.endpoint):
            raise PermissionDenied(
                f"credential '{principal.id}' may not call {executor.endpoint} endpoints",
                code="endpoint_not_allowed",
                param="operation",
            )
        if submission.callback_url is not None:
            await self.jobs.targets.check(submission.callback_url)
        key = request.headers.get("idempotency-key")
        if key is not None and not 0 < len(key) <= _MAX_KEY:
            raise RequestError(f"Idempotency-Key must be 1-{_MAX_KEY} characters.", param="Idempotency-Key")
        job, created = await self.jobs.queue.enqueue(
            NewJob(
                tenant=tenant_key(principal),
                principal=principal_to_dict(principal),
                operation=executor.name,
                model=op.model,
                request=submission.request,
                priority=submission.priority,
                max_attempts=self.jobs.config.max_attempts,
                callback_url=submission.callback_url,
                idempotency_key=key,
                request_hash=hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest(),
                metadata=submission.metadata,
            )
        )
        if created:
            self.jobs.notify()
        headers = {"location": f"/v1/jobs/{job.id}"}
        if not created:
            headers["idempotent-replayed"] = "true"
        return Response(
            orjson.dumps(job.to_api()), status_code=202, media_type="application/json", headers=headers
        )

    async def retrieve(self, request: Request) -> Response:
        principal = allowed(request, "jobs")
        job = await self.jobs.queue.get(request.path_params["job_id"], tenant_scope(principal))
        if job is None:
            raise _not_found(request)
        return json_response(job.to_api())

    async def cancel(self, request: Request) -> Response:
        principal = allowed(request, "jobs")
        job = await self.jobs.queue.cancel(request.path_params["job_id"], tenant_scope(principal))
        if job is None:
            raise _not_found(request)
        if job.status != "cancelled":
            raise Conflict(f"job {job.id} is {job.status}: only a queued or running job can be cancelled.")
        self.jobs.cancelled(job.id)
        return json_response(job.to_api())

    async def list(self, request: Request) -> Response:
        principal = allowed(request, "jobs")
        params = request.query_params
        statuses = [s for s in params.get("status", "").split(",") if s]
        unknown = sorted(set(statuses) - {"queued", "running", *TERMINAL})
        if unknown:
            raise RequestError(f"unknown status {', '.join(unknown)}.", param="status")
        limit = query_limit(params.get("limit"))
        found = await self.jobs.queue.list(
            tenant_scope(principal),
            statuses=statuses,
            operation=params.get("operation"),
            batch_id=params.get("batch_id"),
            after=params.get("after"),
            limit=limit + 1,
        )
        return json_response(page([job.to_api() for job in found], limit))

    async def deliveries(self, request: Request) -> Response:
        principal = allowed(request, "jobs")
        job_id = request.path_params["job_id"]
        if await self.jobs.queue.get(job_id, tenant_scope(principal)) is None:
            raise _not_found(request)
        return json_response(await self.jobs.deliverer.log(job_id, tenant_scope(principal)))

    async def redeliver(self, request: Request) -> Response:
        principal = allowed(request, "jobs")
        job_id = request.path_params["job_id"]
        if await self.jobs.queue.get(job_id, tenant_scope(principal)) is None:
            raise _not_found(request)
        log = await self.jobs.deliverer.redeliver(job_id, tenant_scope(principal))
        if log is None:
            raise Conflict(
                f"job {job_id} has no webhook to redeliver (no callback_url, or not finished yet)."
            )
        return json_response(log)

    async def webhook_secret(self, request: Request) -> Response:
        """The caller's tenant's signing secret, to verify its webhooks with."""
        principal = allowed(request, "jobs")
        secret = await self.jobs.secrets.get(tenant_key(principal))
        return json_response({"object": "webhook.secret", "tenant": principal.tenant, "secret": secret})


def page(items: list[dict[str, Any]], limit: int) -> dict[str, Any]:
    """An OpenAI-style list page from up to ``limit + 1`` items (the extra one says there is more)."""
    shown = items[:limit]
    return {
        "object": "list",
        "data": shown,
        "first_id": shown[0]["id"] if shown else None,
        "last_id": shown[-1]["id"] if shown else None,
        "has_more": len(items) > limit,
    }


def allowed(request: Request, endpoint: str) -> Principal:
    principal = principal_of(request.scope)
    if not principal.may_call(endpoint):
        raise PermissionDenied(
            f"credential '{principal.id}' may not call {endpoint} endpoints", code="endpoint_not_allowed"
        )
    return principal


def query_limit(value: str | None) -> int:
    if value is None:
        return 20
    if not value.isdigit() or not 1 <= int(value) <= 100:  # noqa: PLR2004
        raise RequestError("limit must be an integer from 1 to 100.", param="limit")
    return int(value)


def _in_request(exc: InterlaceError) -> InterlaceError:
    clone = exc.with_message(exc.message)
    clone.param = f"request.{exc.param}" if exc.param else "request"
    return clone


def _not_found(request: Request) -> NotFound:
    return NotFound(
        f"No job with id '{request.path_params['job_id']}'.", param="job_id", code="job_not_found"
    )
