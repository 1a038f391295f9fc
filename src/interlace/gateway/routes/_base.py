"""What every API route family shares: the services it calls, and how a JSON answer is sent."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson
from starlette.responses import Response

if TYPE_CHECKING:
    from interlace.gateway.recording import Recorder
    from interlace.gateway.route_context import ContextFactory
    from interlace.routing.context import RouteContext
    from interlace.routing.router import Router

__all__ = ["ApiRoutes", "json_response"]


class ApiRoutes:
    """Base of the route classes that serve model operations through the router."""

    def __init__(
        self, router: Router, contexts: ContextFactory, *, max_body_bytes: int, recorder: Recorder
    ) -> None:
        self.router = router
        self.contexts = contexts
        self.max_body_bytes = max_body_bytes
        self.recorder = recorder


def json_response(answer: Any, ctx: RouteContext | None = None) -> Response:
    """``answer`` as JSON, with the routing headers when a request was routed."""
    headers = ctx.response_headers() if ctx is not None else None
    return Response(orjson.dumps(answer), media_type="application/json", headers=headers)
