"""The operational routes in ``/openapi.json``: usage, audit, jobs, files, batches, admin keys, metrics.

Each route is one :class:`RouteDoc`: its method and path, parameters, request body (a pydantic
model's ``model_json_schema()``, or a multipart form) and the component schema of its answer
(:mod:`interlace.gateway.openapi_schemas`). :func:`add_route_operations` adds them to a document;
:mod:`interlace.gateway.openapi` adds the error responses and the security scheme to every operation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from interlace.gateway.openapi_schemas import SCHEMAS, ref
from interlace.gateway.routes.batches import BatchRequest
from interlace.gateway.routes.jobs import JobSubmission
from interlace.jobs.functions import FunctionJobRequest
from interlace.security.keys.spec import KeySpec, RotateSpec

if TYPE_CHECKING:
    from pydantic import BaseModel

__all__ = ["METRICS", "ROUTES", "Param", "RouteDoc", "add_route_operations", "body_models", "operation"]


@dataclass(frozen=True, slots=True)
class Param:
    name: str
    schema: dict[str, Any]
    where: str = "query"
    description: str = ""


@dataclass(frozen=True, slots=True)
class RouteDoc:
    method: str
    path: str
    operation_id: str
    summary: str
    tag: str
    response: str | None
    """The component schema of the answer (None: not JSON, see ``media_type``)."""
    status: str = "200"
    params: tuple[Param, ...] = ()
    body: type[BaseModel] | None = None
    form: str | None = None
    """A ``multipart/form-data`` body's component schema."""
    media_type: str = "application/json"
    public: bool = False
    """Open without a credential (health, metrics)."""
    description: str = ""


def _path(name: str) -> Param:
    return Param(name, {"type": "string"}, where="path")


_LIMIT_100: Final = Param("limit", {"type": "integer", "minimum": 1, "maximum": 100, "default": 20})
_AFTER: Final = Param("after", {"type": "string"}, description="The last id of the previous page.")
_JOB_ID: Final = _path("job_id")
_FILE_ID: Final = _path("file_id")
_BATCH_ID: Final = _path("batch_id")
_KEY_ID: Final = _path("key_id")
_DAY: Final = {"type": "string", "format": "date"}

ROUTES: Final[tuple[RouteDoc, ...]] = (
    RouteDoc(
        "get",
        "/v1/usage",
        "getUsage",
        "Usage and cost of the caller's tenant",
        "usage",
        "Usage",
        params=(
            Param("start", _DAY),
            Param("end", _DAY),
            Param("group_by", {"enum": ["day", "model", "api_key"], "default": "day"}),
            Param("tenant", {"type": "string"}, description="Operator only: another tenant's usage."),
        ),
    ),
    RouteDoc(
        "get",
        "/v1/audit",
        "listAuditEntries",
        "Audit entries of the caller's tenant, oldest first",
        "audit",
        "AuditPage",
        params=(
            Param("since", {"type": "string"}, description="ISO date or date-time, inclusive."),
            Param("until", {"type": "string"}, description="ISO date or date-time, exclusive."),
            Param("limit", {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100}),
            Param("cursor", {"type": "string"}, description="next_cursor of the previous page."),
            Param("tenant", {"type": "string"}, description="Operator only."),
        ),
    ),
    RouteDoc(
        "post",
        "/v1/jobs",
        "createJob",
        "Submit an operation as a durable job",
        "jobs",
        "Job",
        "202",
        body=JobSubmission,
        description=(
            "`request` is the body the operation's sync endpoint takes: a chat completion, embeddings "
            "or classify request, or for `function` a FunctionJobRequest (`name`, `version`, `input`). "
            "It is validated when submitted: a 400 names the field (`request.input.customer.email`)."
        ),
    ),
    RouteDoc(
        "get",
        "/v1/jobs",
        "listJobs",
        "List the tenant's jobs, newest first",
        "jobs",
        "JobList",
        params=(
            Param("status", {"type": "string"}, description="Comma-separated statuses."),
            Param("operation", {"type": "string"}),
            Param("batch_id", {"type": "string"}),
            _AFTER,
            _LIMIT_100,
        ),
    ),
    RouteDoc(
        "get",
        "/v1/jobs/{job_id}",
        "retrieveJob",
        "A job, with its result or error",
        "jobs",
        "Job",
        params=(_JOB_ID,),
    ),
    RouteDoc(
        "delete",
        "/v1/jobs/{job_id}",
        "cancelJob",
        "Cancel a queued or running job",
        "jobs",
        "Job",
        params=(_JOB_ID,),
    ),
    RouteDoc(
        "get",
        "/v1/jobs/{job_id}/deliveries",
        "listJobDeliveries",
        "A job's webhook deliveries",
        "jobs",
        "WebhookDeliveries",
        params=(_JOB_ID,),
    ),
    RouteDoc(
        "post",
        "/v1/jobs/{job_id}/deliveries/redeliver",
        "redeliverJobWebhook",
        "Send a finished job's webhook again",
        "jobs",
        "WebhookDeliveries",
        params=(_JOB_ID,),
    ),
    RouteDoc(
        "get",
        "/v1/webhooks/secret",
        "getWebhookSecret",
        "The tenant's webhook signing secret",
        "jobs",
        "WebhookSecret",
    ),
    RouteDoc(
        "post",
        "/v1/files",
        "createFile",
        "Upload a file (a batch input is checked line by line)",
        "files",
        "File",
        form="FileUpload",
    ),
    RouteDoc(
        "get",
        "/v1/files",
        "listFiles",
        "List the tenant's files",
        "files",
        "FileList",
        params=(
            Param("purpose", {"type": "string"}),
            Param("limit", {"type": "integer", "minimum": 1, "maximum": 10_000, "default": 10_000}),
            Param("order", {"enum": ["asc", "desc"], "default": "desc"}),
            _AFTER,
        ),
    ),
    RouteDoc(
        "get",
        "/v1/files/{file_id}",
        "retrieveFile",
        "A file's description",
        "files",
        "File",
        params=(_FILE_ID,),
    ),
    RouteDoc(
        "delete",
        "/v1/files/{file_id}",
        "deleteFile",
        "Delete a file (409 while a batch reads it)",
        "files",
        "FileDeleted",
        params=(_FILE_ID,),
    ),
    RouteDoc(
        "get",
        "/v1/files/{file_id}/content",
        "downloadFile",
        "A file's content",
        "files",
        None,
        params=(_FILE_ID,),
        media_type="application/jsonl",
    ),
    RouteDoc(
        "post",
        "/v1/batches",
        "createBatch",
        "Run every line of a file as a job",
        "batches",
        "Batch",
        body=BatchRequest,
    ),
    RouteDoc(
        "get",
        "/v1/batches",
        "listBatches",
        "List the tenant's batches, newest first",
        "batches",
        "BatchList",
        params=(_AFTER, _LIMIT_100),
    ),
    RouteDoc(
        "get", "/v1/batches/{batch_id}", "retrieveBatch", "A batch", "batches", "Batch", params=(_BATCH_ID,)
    ),
    RouteDoc(
        "post",
        "/v1/batches/{batch_id}/cancel",
        "cancelBatch",
        "Cancel an unfinished batch",
        "batches",
        "Batch",
        params=(_BATCH_ID,),
    ),
    RouteDoc(
        "post",
        "/admin/v1/keys",
        "createKey",
        "Issue a virtual key (operator only)",
        "admin",
        "ApiKey",
        "201",
        body=KeySpec,
    ),
    RouteDoc(
        "get",
        "/admin/v1/keys",
        "listKeys",
        "List virtual keys (operator only)",
        "admin",
        "ApiKeyList",
        params=(
            Param("tenant", {"type": "string"}),
            Param("team", {"type": "string"}),
            Param("include_revoked", {"type": "boolean", "default": False}),
        ),
    ),
    RouteDoc(
        "get", "/admin/v1/keys/{key_id}", "retrieveKey", "A virtual key", "admin", "ApiKey", params=(_KEY_ID,)
    ),
    RouteDoc(
        "delete",
        "/admin/v1/keys/{key_id}",
        "revokeKey",
        "Revoke a virtual key at once",
        "admin",
        "ApiKey",
        params=(_KEY_ID,),
    ),
    RouteDoc(
        "post",
        "/admin/v1/keys/{key_id}/rotate",
        "rotateKey",
        "A new secret; the old one works for the grace period",
        "admin",
        "ApiKey",
        params=(_KEY_ID,),
        body=RotateSpec,
    ),
)

METRICS: Final = RouteDoc(
    "get",
    "/metrics",
    "metrics",
    "Prometheus metrics",
    "observability",
    None,
    media_type="text/plain",
    public=True,
)
"""Served only with ``observability.metrics.enabled``."""


def body_models() -> list[type[BaseModel]]:
    """The pydantic models of the request bodies (their schemas become components)."""
    return [FunctionJobRequest, *(r.body for r in ROUTES if r.body is not None)]


def operation(route: RouteDoc, refs: dict[type[BaseModel], dict[str, Any]]) -> dict[str, Any]:
    """The OpenAPI operation of ``route``; ``refs`` maps body models to their component ``$ref``."""
    content: dict[str, Any] = (
        {route.media_type: {"schema": ref(route.response)}}
        if route.response is not None
        else {route.media_type: {"schema": {"type": "string"}}}
    )
    answer: dict[str, Any] = {
        "operationId": route.operation_id,
        "summary": route.summary,
        "tags": [route.tag],
        "responses": {route.status: {"description": "Success", "content": content}},
    }
    if route.description:
        answer["description"] = route.description
    if route.params:
        answer["parameters"] = [
            {
                "name": p.name,
                "in": p.where,
                "required": p.where == "path",
                "schema": p.schema,
                **({"description": p.description} if p.description else {}),
            }
            for p in route.params
        ]
    if route.body is not None:
        required = route.body is not RotateSpec  # a rotation may have no body
        answer["requestBody"] = {
            "required": required,
            "content": {"application/json": {"schema": refs[route.body]}},
        }
    if route.form is not None:
        answer["requestBody"] = {
            "required": True,
            "content": {"multipart/form-data": {"schema": ref(route.form)}},
        }
    if route.public:
        answer["security"] = []
    return answer


def add_route_operations(
    document: dict[str, Any], refs: dict[type[BaseModel], dict[str, Any]], *, metrics: bool
) -> None:
    """Add the operational routes and their component schemas to ``document`` (in place)."""
    paths: dict[str, Any] = document["paths"]
    document["components"]["schemas"].update(SCHEMAS)
    for route in (*ROUTES, METRICS) if metrics else ROUTES:
        paths.setdefault(route.path, {})[route.method] = operation(route, refs)
