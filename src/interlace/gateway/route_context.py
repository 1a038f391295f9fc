"""Build the per-request :class:`RouteContext` from the HTTP request: caller, deadline, tags, facts."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from interlace.gateway.identity import principal_of
from interlace.observability.tracing import TRACE_SCOPE_KEY
from interlace.resilience.retry import parse_deadline_header
from interlace.routing.context import RouteContext
from interlace.routing.strategies import parse_tags_header

if TYPE_CHECKING:
    from starlette.requests import Request

    from interlace.config.schema import RoutingConfig

__all__ = ["ContextFactory"]


class ContextFactory:
    def __init__(self, routing: RoutingConfig) -> None:
        self._deadline_header = routing.deadline_header.lower()
        self._tags_header = routing.tags_header.lower()
        self._max_deadline = routing.max_deadline

    def __call__(self, request: Request, body: dict[str, Any] | None = None) -> RouteContext:
        headers = request.headers
        seconds = parse_deadline_header(
            headers.get(self._deadline_header),
            default=self._max_deadline,
            maximum=self._max_deadline,
            header=self._deadline_header,
        )
        tags_value = headers.get(self._tags_header)
        user = body.get("user") if body else None
        metadata = body.get("metadata") if body else None
        return RouteContext(
            deadline=time.monotonic() + seconds,
            headers=headers,
            principal=principal_of(request.scope),
            required_tags=parse_tags_header(tags_value, header=self._tags_header) if tags_value else {},
            user=user if isinstance(user, str) else None,
            metadata={str(k): str(v) for k, v in metadata.items()} if isinstance(metadata, dict) else {},
            trace=request.scope.get(TRACE_SCOPE_KEY),  # set by the tracing middleware, when tracing is on
        )
