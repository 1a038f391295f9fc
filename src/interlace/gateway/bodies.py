"""Read request bodies: size limit (413) and JSON decoding (400) before any handler logic."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar

import orjson
from pydantic import BaseModel, ValidationError

from interlace.core.errors import PayloadTooLarge, RequestError
from interlace.gateway.errors import validation_error

if TYPE_CHECKING:
    from starlette.requests import Request

__all__ = ["read_json", "validate"]

M = TypeVar("M", bound=BaseModel)


async def read_json(request: Request, limit: int) -> dict[str, Any]:
    """The body as a JSON object; 413 past ``limit`` bytes, 400 when it is not a JSON object."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        chunks.append(chunk)
    raw = b"".join(chunks)
    if not raw:
        raise RequestError("The request body is empty; send a JSON object.", code="invalid_json")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise RequestError(f"The request body is not valid JSON: {exc}.", code="invalid_json") from None
    if not isinstance(body, dict):
        raise RequestError("The request body must be a JSON object.", code="invalid_json")
    return body


def validate(schema: type[M], body: dict[str, Any]) -> M:
    try:
        return schema.model_validate(body)
    except ValidationError as exc:
        raise validation_error(exc) from None


def _too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"The request body is larger than the configured limit of {limit} bytes "
        "(server.max_body_bytes in interlace.yaml)."
    )
