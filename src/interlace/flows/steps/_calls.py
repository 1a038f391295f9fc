"""How a step's AI call runs: as the flow's principal, through the gate and the router, recorded.

Each call is one request to the runtime's observers (event log, metrics, audit), like a gateway or a
job request, with the request id ``flow-<flow>-<message id>``; its admission (quotas, budgets) is
settled from that record. The call's ``RouteContext.trace`` is the message's span, so the model call
is a child of the message's trace (:mod:`interlace.flows.tracing`).
"""

from __future__ import annotations

import contextlib
import time
from typing import TYPE_CHECKING, Any

from interlace.core.errors import MessageRejected
from interlace.flows.tracing import MESSAGE_TRACE
from interlace.gateway.identity import PRINCIPAL_SCOPE_KEY
from interlace.gateway.middleware.request_id import REQUEST_ID_SCOPE_KEY
from interlace.gateway.recording import Recording
from interlace.routing.context import RouteContext

if TYPE_CHECKING:
    from collections.abc import Iterator

    from interlace.flows.message import Message
    from interlace.flows.services import FlowServices

__all__ = ["call_context", "field_text", "place"]

_DEADLINE = 600.0


@contextlib.contextmanager
def call_context(
    services: FlowServices,
    message: Message,
    operation: str,
    endpoint: str,
    body: dict[str, Any] | None = None,
) -> Iterator[tuple[RouteContext, Recording | None]]:
    """The call's routing context and, with a recorder, its :class:`Recording` (finished on exit)."""
    ctx = RouteContext(
        deadline=time.monotonic() + _DEADLINE,
        principal=services.principal,
        metadata={"flow": services.flow, "message_id": message.id[:128]},
        headers={k: v for k, v in message.headers.items() if k in {"traceparent", "tracestate"}},
    )
    ctx.trace = MESSAGE_TRACE.get()
    recorder = services.recorder
    if recorder is None:
        yield ctx, None
        return
    scope: dict[str, Any] = {
        "type": "flow",
        "headers": [],
        REQUEST_ID_SCOPE_KEY: f"flow-{services.flow}-{message.id}"[:128],
        PRINCIPAL_SCOPE_KEY: services.principal,
    }
    with Recording(recorder, scope, operation, endpoint) as rec:
        rec.route(ctx, body)
        yield ctx, rec


def field_text(payload: Any, name: str) -> str:
    """The string at ``name`` (dots walk into objects) of ``payload``; ``ValueError`` when absent."""
    value = payload
    for part in name.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    if not isinstance(value, str):
        msg = f"the payload has no text field '{name}'"
        raise MessageRejected(msg, param=name)
    return value


def place(payload: Any, into: str | None, value: Any) -> Any:
    """``value`` as the new payload (``into`` None) or in a copy of the payload at field ``into``."""
    if into is None:
        return value
    result = dict(payload) if isinstance(payload, dict) else {"input": payload}
    result[into] = value
    return result
