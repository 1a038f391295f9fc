"""The model endpoints' short way in: exact ``(method, path)`` matches skip the router's layers.

Every model call passes Starlette's exception middleware, its router (a regular-expression match per
route, tried in order), the endpoint wrapper and its exception wrapper before the handler runs: a few
dozen microseconds per request that buy nothing for a fixed path like ``POST /v1/chat/completions``.
:class:`DirectRoutes` sits innermost, after the request id and authentication, and calls the handler of
such a path itself, with the same error answers (:func:`~interlace.gateway.errors.handle_exception` for
Interlace errors and Starlette's HTTP errors). Anything else — another path or method, a lifespan or
websocket scope, a departed client, an unexpected exception — goes on exactly as before: to the router,
or up to Starlette's outermost error middleware (the 499 of a departed client, the logged 500).
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING

from starlette.exceptions import HTTPException
from starlette.requests import Request

from interlace.core.errors import InterlaceError
from interlace.gateway.errors import handle_exception

if TYPE_CHECKING:
    from collections.abc import Iterable

    from starlette.routing import Route
    from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["DirectRoutes"]

_ANSWERED = (InterlaceError, HTTPException)


class DirectRoutes:
    """Serve the routes without path parameters directly; pass every other request to ``app``."""

    def __init__(self, app: ASGIApp, *, routes: Iterable[Route]) -> None:
        self.app = app
        self.table = {
            (method, route.path): route
            for route in routes
            if not route.param_convertors and _is_handler(route.endpoint)
            for method in route.methods or ()
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # a lifespan or websocket scope has no method: never in the table
        route = self.table.get((scope.get("method"), scope.get("path")))  # type: ignore[arg-type]
        if route is None or scope.get("root_path"):  # mounted under a prefix: the router strips it
            await self.app(scope, receive, send)
            return
        scope["route"] = route  # as the router sets it (the tracing middleware names spans by it)
        request = Request(scope, receive)
        try:
            response = await route.endpoint(request)
        except _ANSWERED as exc:
            response = await handle_exception(request, exc)
        await response(scope, receive, send)


def _is_handler(endpoint: object) -> bool:
    """A request → response function (an ASGI app or endpoint class as a route keeps the router's way)."""
    return inspect.isfunction(endpoint) or inspect.ismethod(endpoint)
