"""Request ids: accepted from the client's ``x-request-id`` when sane, else generated; always answered.

A client's id is kept when it is 1-128 characters of ``[A-Za-z0-9._-]`` (anything else — too long,
spaces, quotes, control characters — is replaced, so a log line can never be forged through it).
The id is left in the ASGI scope under :data:`REQUEST_ID_SCOPE_KEY` for the routes and their
request record, and sent back in the ``x-request-id`` header of every response: answers, errors,
401s of the authentication middleware and 404s of unknown paths alike. The one response that does
not pass through this middleware — the 500 of an unhandled error, answered by Starlette's outermost
error middleware — gets it from the handler wrapped with :func:`with_request_id`.

As the outermost of the gateway's middleware it runs the work a route left for after its response
(:mod:`interlace.gateway.after_response`: recording an answered request), and it is where a request
whose client went away (:class:`~interlace.gateway.disconnect.ClientDisconnected`, raised through the
routes so that the record and the trace see it) ends quietly: nobody is left to answer, and it is not
a server error for Starlette's error middleware to log with a traceback.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Final

from interlace.core.ids import sortable_hex
from interlace.gateway.after_response import accept_deferred, run_deferred
from interlace.gateway.disconnect import ClientDisconnected

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

    Handler = Callable[[Request, Exception], Awaitable[Response]]

__all__ = [
    "REQUEST_ID_HEADER",
    "REQUEST_ID_SCOPE_KEY",
    "RequestIdMiddleware",
    "new_request_id",
    "request_id",
    "with_request_id",
]

REQUEST_ID_SCOPE_KEY: Final = "interlace.request_id"
"""The ASGI scope key the request's id (a ``str``) is stored under."""
REQUEST_ID_HEADER: Final = "x-request-id"

_HEADER: Final = REQUEST_ID_HEADER.encode()
_SANE: Final = re.compile(rb"[A-Za-z0-9._-]{1,128}")


def new_request_id() -> str:
    """32 hex digits: the milliseconds, then random ones (:func:`~interlace.core.ids.sortable_hex`)."""
    return sortable_hex(128)


def request_id(scope: Scope) -> str | None:
    """The id the middleware gave this request, if it ran."""
    value = scope.get(REQUEST_ID_SCOPE_KEY)
    return value if isinstance(value, str) else None


def with_request_id(handler: Handler) -> Handler:
    """The exception handler, its response given the request's ``x-request-id``."""

    async def handle(request: Request, exc: Exception) -> Response:
        response = await handler(request, exc)
        ident = request_id(request.scope)
        if ident is not None and REQUEST_ID_HEADER not in response.headers:
            response.headers[REQUEST_ID_HEADER] = ident
        return response

    return handle


class RequestIdMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        raw: bytes | None = None
        for name, value in scope["headers"]:
            if name == _HEADER:
                if _SANE.fullmatch(value):
                    raw = value
                break
        if raw is None:
            ident = new_request_id()
            raw = ident.encode()
        else:
            ident = raw.decode("ascii")
        scope[REQUEST_ID_SCOPE_KEY] = ident
        header = (_HEADER, raw)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers") or ())
                if not any(name == _HEADER for name, _ in headers):
                    headers.append(header)
                message["headers"] = headers
            await send(message)

        accept_deferred(scope)
        try:
            await self.app(scope, receive, send_with_id)
        except ClientDisconnected:
            return
        finally:
            run_deferred(scope)  # the response is written: what only observes it (gateway.after_response)
