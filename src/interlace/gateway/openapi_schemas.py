"""The answers of the operational routes, as JSON schemas for ``/openapi.json`` components.

Written from what the routes return (``Job.to_api()``, ``file_object()``, ``batch_object()``,
``ApiKey.public()`` …); a gateway test validates real answers against them.
"""

from __future__ import annotations

from typing import Any, Final

__all__ = ["SCHEMAS", "ref"]

_REF: Final = "#/components/schemas/"

_NULLABLE_STRING: Final = {"type": ["string", "null"]}
_NULLABLE_INT: Final = {"type": ["integer", "null"]}
_OBJECT: Final = {"type": "object"}
_NULLABLE_OBJECT: Final = {"type": ["object", "null"]}


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"{_REF}{name}"}


def _list_of(item: str, *, cursor: bool = True) -> dict[str, Any]:
    properties: dict[str, Any] = {"object": {"const": "list"}, "data": {"type": "array", "items": ref(item)}}
    if cursor:
        properties |= {
            "first_id": _NULLABLE_STRING,
            "last_id": _NULLABLE_STRING,
            "has_more": {"type": "boolean"},
        }
    return {"type": "object", "properties": properties, "required": ["object", "data"]}


SCHEMAS: Final[dict[str, dict[str, Any]]] = {
    "Job": {
        "type": "object",
        "properties": {
            "id": {"type": "string"},
            "object": {"const": "job"},
            "status": {"enum": ["queued", "running", "succeeded", "failed", "dead", "cancelled"]},
            "operation": {"type": "string"},
            "model": {"type": "string"},
            "priority": {"type": "integer"},
            "attempts": {"type": "integer"},
            "max_attempts": {"type": "integer"},
            "created_at": {"type": "integer"},
            "started_at": _NULLABLE_INT,
            "finished_at": _NULLABLE_INT,
            "callback_url": _NULLABLE_STRING,
            "metadata": {"type": "object", "additionalProperties": {"type": "string"}},
            "batch_id": _NULLABLE_STRING,
            "result": {**_NULLABLE_OBJECT, "description": "The answer the sync endpoint would give."},
            "error": {**_NULLABLE_OBJECT, "description": "The last error body, with its HTTP status."},
        },
        "required": ["id", "object", "status", "operation", "model", "attempts", "created_at"],
    },
    "JobList": _list_of("Job"),
    "WebhookDeliveries": {
        "type": "object",
        "description": "A job's webhook messages, each with every delivery attempt.",
        "properties": {"object": {"const": "list"}, "data": {"type": "array", "items": _OBJECT}},
    },
    "WebhookSecret": {
        "type": "object",
        "properties": {
            "object": {"const": "webhook.secret"},
            "tenant": _NULLABLE_STRING,
            "secret": {"type": "string", "description": "Standard Webhooks signing secret (whsec_…)."},
        },
        "required": ["object", "secret"],
    },
    "File": {
        "type": "object",
        "properties": {
            "id": {"type": "string"},
            "object": {"const": "file"},
            "bytes": {"type": "integer"},
            "created_at": {"type": "integer"},
            "filename": {"type": "string"},
            "purpose": {"enum": ["batch", "batch_output", "user_data"]},
            "status": {"type": "string"},
            "status_details": _NULLABLE_STRING,
        },
        "required": ["id", "object", "bytes", "created_at", "filename", "purpose"],
    },
    "FileList": _list_of("File"),
    "FileDeleted": {
        "type": "object",
        "properties": {"id": {"type": "string"}, "object": {"const": "file"}, "deleted": {"type": "boolean"}},
        "required": ["id", "object", "deleted"],
    },
    "FileUpload": {
        "type": "object",
        "properties": {
            "file": {"type": "string", "format": "binary"},
            "purpose": {"enum": ["batch", "user_data"]},
        },
        "required": ["file", "purpose"],
    },
    "Batch": {
        "type": "object",
        "properties": {
            "id": {"type": "string"},
            "object": {"const": "batch"},
            "endpoint": {"type": "string"},
            "input_file_id": {"type": "string"},
            "completion_window": {"type": "string"},
            "status": {"enum": ["in_progress", "cancelling", "finalizing", "completed", "cancelled"]},
            "output_file_id": _NULLABLE_STRING,
            "error_file_id": _NULLABLE_STRING,
            "created_at": {"type": "integer"},
            "request_counts": {
                "type": "object",
                "properties": {n: {"type": "integer"} for n in ("total", "completed", "failed")},
            },
            "metadata": {"type": ["object", "null"], "additionalProperties": {"type": "string"}},
        },
        "required": ["id", "object", "endpoint", "input_file_id", "status", "created_at", "request_counts"],
    },
    "BatchList": _list_of("Batch"),
    "ApiKey": {
        "type": "object",
        "description": "A virtual key as the admin API shows it (never its hash).",
        "properties": {
            "object": {"const": "api_key"},
            "id": {"type": "string"},
            "name": {"type": "string"},
            "tenant": {"type": "string"},
            "status": {"type": "string"},
            "models": {"type": ["array", "null"], "items": {"type": "string"}},
            "endpoints": {"type": ["array", "null"], "items": {"type": "string"}},
            "limits": _OBJECT,
            "key": {"type": "string", "description": "The secret: only when created or rotated."},
        },
        "required": ["object", "id", "name", "tenant", "status"],
    },
    "ApiKeyList": _list_of("ApiKey", cursor=False),
    "Usage": {
        "type": "object",
        "description": "Requests, tokens and cost of the caller's tenant, grouped by day, model or key.",
        "properties": {
            "object": {"const": "usage"},
            "tenant": _NULLABLE_STRING,
            "start": {"type": "string", "format": "date"},
            "end": {"type": "string", "format": "date"},
            "group_by": {"enum": ["day", "model", "api_key"]},
            "data": {"type": "array", "items": _OBJECT},
            "total": _OBJECT,
        },
        "required": ["object", "start", "end", "group_by", "data", "total"],
    },
    "AuditPage": {
        "type": "object",
        "properties": {
            "object": {"const": "list"},
            "data": {"type": "array", "items": _OBJECT, "description": "Entries with their chain fields."},
            "has_more": {"type": "boolean"},
            "next_cursor": _NULLABLE_STRING,
        },
        "required": ["object", "data", "has_more"],
    },
}
