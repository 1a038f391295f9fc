"""Trace context through a flow: each message continues the trace named by its ``traceparent``.

The engine starts a span per message (a child of the producer's span when the message carries a
``traceparent`` header), makes it the parent of the AI calls its steps make (the steps read
:data:`MESSAGE_TRACE` into their ``RouteContext.trace``), and writes the span's own ``traceparent`` on
the outgoing messages, so the sink's consumers continue the same trace. Without tracing configured
nothing is created and the headers pass through unchanged.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import TYPE_CHECKING

from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

if TYPE_CHECKING:
    from interlace.flows.message import Message
    from interlace.observability.spans import RequestTrace
    from interlace.observability.tracing import Tracing

__all__ = ["MESSAGE_TRACE", "finish_message_trace", "inject", "start_message_trace"]

MESSAGE_TRACE: ContextVar[RequestTrace | None] = ContextVar("interlace_flow_message_trace", default=None)
"""The span of the message the current task processes (None when tracing is off)."""

_PROPAGATOR = TraceContextTextMapPropagator()


def start_message_trace(tracing: Tracing | None, flow: str, message: Message) -> RequestTrace | None:
    if tracing is None or not tracing.enabled:
        return None
    trace = tracing.start_request(
        f"flow {flow}",
        message.headers,
        {"interlace.flow": flow, "messaging.message.id": message.id, "messaging.source": message.source},
    )
    MESSAGE_TRACE.set(trace)
    return trace


def inject(trace: RequestTrace | None, message: Message) -> None:
    """Write ``trace``'s ``traceparent`` (and ``tracestate``) on ``message``'s headers."""
    if trace is not None:
        _PROPAGATOR.inject(message.headers, context=trace.context)


def finish_message_trace(trace: RequestTrace | None, outcome: str) -> None:
    if trace is not None:
        trace.end({"interlace.flow.outcome": outcome})
