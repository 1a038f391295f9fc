"""The SERVER span of each HTTP request (only installed when tracing is enabled).

The caller's W3C ``traceparent``/``tracestate`` are continued; the span is named ``{method}
{http.route}`` with the HTTP semantic-convention attributes, and its :class:`RequestTrace` is left in
the ASGI scope under :data:`TRACE_SCOPE_KEY` for the route's ``RouteContext``. The span ends when the
application returns — for a stream, after its last chunk was sent, not when its headers were.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from opentelemetry.trace import Status, StatusCode

from interlace.gateway.disconnect import ClientDisconnected
from interlace.observability.spans import error_type
from interlace.observability.tracing import TRACE_SCOPE_KEY

if TYPE_CHECKING:
    from opentelemetry.util.types import AttributeValue
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

    from interlace.observability.tracing import Tracing

__all__ = ["TracingMiddleware"]

_SERVER_ERROR = 500
_CLIENT_CLOSED = 499  # as nginx logs it, and the gateway answers a request whose client left


class TracingMiddleware:
    def __init__(self, app: ASGIApp, *, tracing: Tracing) -> None:
        self.app = app
        self._tracing = tracing

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method: str = scope["method"]
        carrier, attributes = _request_facts(scope)
        trace = self._tracing.start_request(method, carrier, attributes)
        scope[TRACE_SCOPE_KEY] = trace
        status = 0

        async def send_traced(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        failure: BaseException | None = None
        try:
            await self.app(scope, receive, send_traced)
        except BaseException as error:
            failure = error
            raise
        finally:
            outcome: dict[str, AttributeValue] = {}
            route = getattr(scope.get("route"), "path", None)
            if isinstance(route, str):
                trace.span.update_name(f"{method} {route}")
                outcome["http.route"] = route
            if isinstance(failure, ClientDisconnected | asyncio.CancelledError):  # the caller's doing
                outcome["error.type"] = "client_disconnected"
                status = status or _CLIENT_CLOSED
            elif failure is not None:  # the outermost error handler answers 500 unless a response began
                outcome["error.type"] = error_type(failure)
                trace.span.set_status(Status(StatusCode.ERROR, str(failure)[:500] or None))
                status = status or _SERVER_ERROR
            elif status >= _SERVER_ERROR:
                outcome["error.type"] = str(status)
                trace.span.set_status(Status(StatusCode.ERROR))
            if status:
                outcome["http.response.status_code"] = status
            trace.end(outcome)


def _request_facts(scope: Scope) -> tuple[dict[str, str], dict[str, AttributeValue]]:
    """The caller's trace context headers, and the request's HTTP attributes."""
    carrier: dict[str, str] = {}
    attributes: dict[str, AttributeValue] = {
        "http.request.method": scope["method"],
        "url.path": scope["path"],
        "url.scheme": scope.get("scheme", "http"),
        "network.protocol.version": scope.get("http_version", "1.1"),
    }
    for name, value in scope["headers"]:
        if name in (b"traceparent", b"tracestate"):
            carrier[name.decode("latin-1")] = value.decode("latin-1")
        elif name == b"user-agent":
            attributes["user_agent.original"] = value.decode("latin-1")
    server, client = scope.get("server"), scope.get("client")
    if server:
        attributes["server.address"] = str(server[0])
        if server[1] is not None:
            attributes["server.port"] = int(server[1])
    if client:
        attributes["client.address"] = str(client[0])
    return carrier, attributes
