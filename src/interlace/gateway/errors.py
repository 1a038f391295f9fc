"""Encode errors for clients: OpenAI-style JSON everywhere, Anthropic-style on ``/v1/messages``.

Nothing reaches a client as a stack trace: anything that is not an :class:`InterlaceError` is
logged with its traceback and answered as a generic 500 with a reference id.
"""

from __future__ import annotations

import logging
import uuid
from typing import TYPE_CHECKING, Any

import orjson
from starlette.exceptions import HTTPException
from starlette.responses import Response

from interlace.core.errors import InterlaceError, MethodNotAllowed, NotFound, RequestError
from interlace.gateway.disconnect import ClientDisconnected

if TYPE_CHECKING:
    from pydantic import ValidationError
    from starlette.requests import Request

__all__ = ["anthropic_error_body", "error_response", "handle_exception", "validation_error"]

log = logging.getLogger("interlace.gateway")

_ANTHROPIC_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    503: "overloaded_error",
}

_UNION_TAGS = frozenset({"str", "int", "float", "bool", "none", "dict", "list"})


def error_response(error: InterlaceError, *, path: str = "") -> Response:
    """The error in the shape the path's protocol expects (Anthropic, OIP v2, else OpenAI)."""
    body: dict[str, Any]
    if path.startswith("/v1/messages"):
        body = anthropic_error_body(error)
    elif path.startswith("/v2/"):
        body = {"error": error.message}
    else:
        body = error.to_openai()
    return Response(
        orjson.dumps(body),
        status_code=error.status,
        headers=error.headers,
        media_type="application/json",
    )


def anthropic_error_body(error: InterlaceError) -> dict[str, Any]:
    kind = _ANTHROPIC_TYPES.get(error.status, "api_error")
    return {"type": "error", "error": {"type": kind, "message": error.message}}


def validation_error(exc: ValidationError) -> RequestError:
    """The most specific problem of a pydantic validation, naming its field as ``a.b[0].c``."""
    errors = exc.errors(include_url=False)
    best = max(errors, key=lambda e: len(e["loc"]))
    param = _param(best["loc"])
    message = str(best["msg"]).removeprefix("Value error, ")
    if best["type"] == "missing":
        message = f"'{param}' is required"
    elif best["type"] == "extra_forbidden":
        message = f"unknown field '{param}'"
    elif param:
        message = f"'{param}': {message}"
    return RequestError(message, param=param or None, code="invalid_value")


def _param(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in _UNION_TAGS or any(c in part for c in "[(-"):
            continue
        else:
            out += f".{part}" if out else part
    return out


async def handle_exception(request: Request, exc: Exception) -> Response:
    path = request.url.path
    if isinstance(exc, ClientDisconnected):
        # nobody is listening any more; the upstream work was cancelled (499, as nginx logs it)
        return Response(status_code=499)
    if isinstance(exc, InterlaceError):
        return error_response(exc, path=path)
    if isinstance(exc, HTTPException):
        return error_response(_http_error(request, exc), path=path)
    reference = uuid.uuid4().hex[:12]
    log.error(
        "unhandled error (reference %s) on %s %s", reference, request.method, request.url.path, exc_info=exc
    )
    error = InterlaceError(f"Internal error (reference {reference}); the gateway logged the details.")
    return error_response(error, path=path)


def _http_error(request: Request, exc: HTTPException) -> InterlaceError:
    if exc.status_code == 404:  # noqa: PLR2004
        return NotFound(f"No route {request.method} {request.url.path}. See /openapi.json for the API.")
    if exc.status_code == 405:  # noqa: PLR2004
        return MethodNotAllowed(
            f"Method {request.method} is not allowed on {request.url.path}.", headers=exc.headers
        )
    return RequestError(str(exc.detail))
