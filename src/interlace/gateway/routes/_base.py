"""What every API route family shares: the services it calls, and how a JSON answer is sent."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar

import orjson
from starlette.responses import Response

from interlace.core.operations import ModelRequest
from interlace.security.gate import Call

if TYPE_CHECKING:
    from collections.abc import Mapping

    from interlace.gateway.recording import Recorder, Recording
    from interlace.gateway.route_context import ContextFactory
    from interlace.routing.context import RouteContext
    from interlace.routing.router import Router
    from interlace.security.gate import Admission, Gate

__all__ = ["ApiRoutes", "json_response"]

RequestT = TypeVar("RequestT", bound=ModelRequest)


class ApiRoutes:
    """Base of the route classes that serve model operations through the router."""

    def __init__(
        self,
        router: Router,
        contexts: ContextFactory,
        *,
        max_body_bytes: int,
        recorder: Recorder,
        gate: Gate,
    ) -> None:
        self.router = router
        self.contexts = contexts
        self.max_body_bytes = max_body_bytes
        self.recorder = recorder
        self.gate = gate

    async def admit(
        self, rec: Recording, endpoint: str, op: RequestT, ctx: RouteContext
    ) -> Admission[RequestT]:
        """Pass ``op`` through the gate's policies (403, 429 … raise); its recording settles them."""
        admission = await self.gate.admit(Call(ctx.principal, endpoint, op, ctx))
        rec.admission = admission
        return admission


def json_response(answer: Any, ctx: RouteContext | None = None) -> Response:
    """``answer`` as JSON, with the routing headers when a request was routed."""
    return _JSONAnswer(orjson.dumps(answer), ctx.response_headers() if ctx is not None else None)


class _JSONAnswer(Response):
    """A 200 with an encoded JSON body; its header list built in one pass (the hot path's answer)."""

    media_type = "application/json"

    def __init__(self, body: bytes, headers: Mapping[str, str] | None) -> None:
        self.status_code = 200
        self.background = None
        self.body = body
        raw = [(b"content-length", b"%d" % len(body)), (b"content-type", b"application/json")]
        if headers:
            raw += [
                (name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers.items()
            ]
        self.raw_headers = raw
