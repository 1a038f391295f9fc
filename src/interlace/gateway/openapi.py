"""``/openapi.json``: the public API described from the same schemas that validate requests.

The model endpoints are listed here, the AI functions by :mod:`interlace.gateway.function_openapi`
and the operational routes (usage, audit, jobs, files, batches, admin keys, metrics) by
:mod:`interlace.gateway.openapi_routes`. Every operation gets the error responses (the OpenAI-style
error body) and, on a gateway with authentication, the bearer security scheme; health, readiness,
metrics and this document stay open.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic.json_schema import models_json_schema

from interlace import __version__
from interlace.gateway.function_openapi import add_function_operations
from interlace.gateway.openapi_routes import add_route_operations, body_models
from interlace.gateway.schemas import (
    ChatCompletionRequest,
    ClassifyRequestBody,
    EmbeddingRequestBody,
    InferenceRequestBody,
    MessagesRequestBody,
)

if TYPE_CHECKING:
    from pydantic import BaseModel

    from interlace.functions.registry import FunctionRegistry

__all__ = ["build_openapi"]

_ERROR = {
    "type": "object",
    "properties": {
        "error": {
            "type": "object",
            "properties": {
                "message": {"type": "string"},
                "type": {"type": "string"},
                "param": {"type": ["string", "null"]},
                "code": {"type": ["string", "null"]},
            },
            "required": ["message", "type"],
        }
    },
    "required": ["error"],
}

_OPERATIONS: list[tuple[str, str, str, type[BaseModel] | None, str]] = [
    (
        "post",
        "/v1/chat/completions",
        "createChatCompletion",
        ChatCompletionRequest,
        "Chat completion (OpenAI)",
    ),
    ("post", "/v1/embeddings", "createEmbedding", EmbeddingRequestBody, "Embeddings (OpenAI)"),
    ("post", "/v1/classify", "classify", ClassifyRequestBody, "Zero-shot classification"),
    ("post", "/v1/messages", "createMessage", MessagesRequestBody, "Messages (Anthropic)"),
    ("get", "/v1/models", "listModels", None, "List models"),
    ("get", "/v1/models/{model}", "retrieveModel", None, "Describe a model"),
    (
        "post",
        "/v2/models/{model}/infer",
        "modelInfer",
        InferenceRequestBody,
        "Inference (Open Inference Protocol v2)",
    ),
    ("get", "/v2/models/{model}", "modelMetadata", None, "Model metadata (Open Inference Protocol v2)"),
    ("get", "/healthz", "healthz", None, "Liveness"),
    ("get", "/readyz", "readyz", None, "Readiness"),
]

_OPEN = frozenset({"/healthz", "/readyz", "/metrics"})
"""Paths served without a credential."""

_ERROR_STATUSES: dict[str, str] = {
    "400": "Invalid request; `param` names the field",
    "401": "Missing or invalid credential",
    "403": "The credential may not call this endpoint, model or tenant",
    "404": "Not found",
    "409": "Conflict with the resource's state",
    "429": "Rate limit, quota or budget exceeded (see Retry-After)",
    "default": "Error",
}


def _add_errors(document: dict[str, Any], *, authenticated: bool) -> None:
    """Every operation answers errors as the OpenAI-style body; security on the protected ones."""
    document["components"]["responses"] = {
        "Error": {
            "description": "An OpenAI-style error",
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
        }
    }
    for path, item in document["paths"].items():
        for operation in item.values():
            responses = operation["responses"]
            for status, description in _ERROR_STATUSES.items():
                if status == "401" and (not authenticated or path in _OPEN):
                    continue
                responses.setdefault(
                    status, {"description": description, "$ref": "#/components/responses/Error"}
                )
            if path in _OPEN:
                operation["security"] = []


def build_openapi(
    *, authenticated: bool, functions: FunctionRegistry | None = None, metrics: bool = False
) -> dict[str, Any]:
    """The document; ``metrics`` when ``/metrics`` is served (``observability.metrics.enabled``)."""
    mode: Literal["validation"] = "validation"
    models = [(m, mode) for _, _, _, m, _ in _OPERATIONS if m is not None]
    models += [(m, mode) for m in body_models()]
    refs, defs = models_json_schema(models, ref_template="#/components/schemas/{model}")
    paths: dict[str, dict[str, Any]] = {}
    for method, path, operation_id, model, summary in _OPERATIONS:
        operation: dict[str, Any] = {
            "operationId": operation_id,
            "summary": summary,
            "responses": {
                "200": {
                    "description": "Success",
                    "content": {"application/json": {"schema": {"type": "object"}}},
                },
                "default": {
                    "description": "Error",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
                },
            },
        }
        if "{model}" in path:
            operation["parameters"] = [
                {"name": "model", "in": "path", "required": True, "schema": {"type": "string"}}
            ]
        if model is not None:
            operation["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": refs[(model, "validation")]}},
            }
        paths.setdefault(path, {})[method] = operation
    schemas = dict(defs.get("$defs", {}))
    schemas["Error"] = _ERROR
    document: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {"title": "Interlace gateway", "version": __version__},
        "paths": paths,
        "components": {"schemas": schemas},
    }
    add_function_operations(document, functions)  # one typed operation per AI function version
    bodies = {m: refs[(m, mode)] for m in body_models()}
    add_route_operations(document, bodies, metrics=metrics)  # usage, audit, jobs, files, batches …
    _add_errors(document, authenticated=authenticated)
    if authenticated:
        document["components"]["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
        document["security"] = [{"bearer": []}]
    return document
