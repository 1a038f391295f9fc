"""``/openapi.json``: the public API described from the same schemas that validate requests."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic.json_schema import models_json_schema

from interlace import __version__
from interlace.gateway.function_openapi import add_function_operations
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


def build_openapi(
    *, authenticated: bool, functions: FunctionRegistry | None = None
) -> dict[str, Any]:
    mode: Literal["validation"] = "validation"
    models = [(m, mode) for _, _, _, m, _ in _OPERATIONS if m is not None]
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
    if authenticated:
        document["components"]["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
        document["security"] = [{"bearer": []}]
    return document
