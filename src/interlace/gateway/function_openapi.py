"""The AI functions in ``/openapi.json``: one operation per function version, with typed schemas.

Each version gets its own request and response component schemas, named after the function and
version (``ClassifyTicketV2Input``, ``ClassifyTicketV2Output``, ``ClassifyTicketV2Response``), so a
client generator (datamodel-code-generator, openapi-python-client …) produces one typed model per
function. ``$defs`` inside a function's schemas are hoisted into components (``ClassifyTicketV2_Address``)
and their ``$ref``\\s rewritten, so the document stays self-contained.

The latest version is served at ``POST /v1/functions/{name}``, every version at
``POST /v1/functions/{name}/versions/{version}``; both paths are literal in the document (a generated
client gets one method per function).
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

from interlace.functions.definition import component_prefix

if TYPE_CHECKING:
    from interlace.functions.definition import FunctionDefinition
    from interlace.functions.registry import FunctionRegistry

__all__ = ["add_function_operations"]

_REF = "#/components/schemas/"


def _hoist(schema: dict[str, Any], prefix: str, components: dict[str, Any]) -> dict[str, Any]:
    """``schema`` with its ``$defs`` moved to components and references to them rewritten."""
    schema = copy.deepcopy(schema)
    defs = schema.pop("$defs", None) or {}
    schema.pop("$schema", None)

    def rewrite(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                node = {**node, "$ref": f"{_REF}{prefix}_{ref.removeprefix('#/$defs/')}"}
            return {k: rewrite(v) for k, v in node.items()}
        if isinstance(node, list):
            return [rewrite(item) for item in node]
        return node

    for name, sub in defs.items():
        components[f"{prefix}_{name}"] = rewrite(sub)
    return dict(rewrite(schema))


def _response_schema(prefix: str, definition: FunctionDefinition) -> dict[str, Any]:
    return {
        "type": "object",
        "title": f"{prefix}Response",
        "properties": {
            "object": {"type": "string", "const": "function.result"},
            "function": {"type": "string", "const": definition.name},
            "version": {"type": "string"},
            "output": {"$ref": f"{_REF}{prefix}Output"},
            "confidence": {"anyOf": [{"type": "number"}, {"type": "null"}]},
            "needs_review": {"type": "boolean"},
            "model": {"anyOf": [{"type": "string"}, {"type": "null"}]},
            "repairs": {"type": "integer"},
            "fallback": {"type": "boolean"},
            "usage": {"$ref": f"{_REF}FunctionUsage"},
        },
        "required": ["function", "version", "output", "needs_review", "usage"],
    }


_USAGE = {
    "type": "object",
    "properties": {
        "prompt_tokens": {"type": "integer"},
        "completion_tokens": {"type": "integer"},
        "total_tokens": {"type": "integer"},
    },
    "required": ["prompt_tokens", "completion_tokens", "total_tokens"],
}


def _operation(definition: FunctionDefinition, prefix: str, operation_id: str) -> dict[str, Any]:
    config = definition.config
    summary = config.description or f"AI function {config.name}"
    return {
        "operationId": operation_id,
        "summary": f"{summary} (version {config.version})",
        "tags": ["functions"],
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": f"{_REF}{prefix}Input"}}},
        },
        "responses": {
            "200": {
                "description": "The validated output",
                "content": {"application/json": {"schema": {"$ref": f"{_REF}{prefix}Response"}}},
            },
            "default": {
                "description": "Error (400 invalid input naming the field; 502 function_output_invalid)",
                "content": {"application/json": {"schema": {"$ref": f"{_REF}Error"}}},
            },
        },
    }


def _identifier(name: str) -> str:
    return name.replace("-", "_")


def add_function_operations(document: dict[str, Any], functions: FunctionRegistry | None) -> None:
    """Add every function version's paths and component schemas to ``document`` (in place)."""
    if functions is None or not len(functions):
        return
    paths: dict[str, Any] = document["paths"]
    components: dict[str, Any] = document["components"]["schemas"]
    for definition in functions:
        prefix = component_prefix(definition.name, definition.version)
        components[f"{prefix}Input"] = _hoist(definition.input_schema, prefix, components)
        components[f"{prefix}Output"] = _hoist(definition.output_schema, prefix, components)
        components[f"{prefix}Response"] = _response_schema(prefix, definition)
        ident = f"{_identifier(definition.name)}_v{_identifier(definition.version).replace('.', '_')}"
        path = f"/v1/functions/{definition.name}/versions/{definition.version}"
        paths[path] = {"post": _operation(definition, prefix, f"callFunction_{ident}")}
    for definition in functions.latest():
        name = definition.name
        prefix = component_prefix(name, definition.version)
        operation = _operation(definition, prefix, f"callFunction_{_identifier(name)}")
        paths[f"/v1/functions/{name}"] = {"post": operation}
    components["FunctionUsage"] = _USAGE
    paths["/v1/functions"] = {
        "get": {
            "operationId": "listFunctions",
            "summary": "List AI functions with their schemas",
            "tags": ["functions"],
            "responses": {
                "200": {
                    "description": "Success",
                    "content": {"application/json": {"schema": {"type": "object"}}},
                }
            },
        }
    }
