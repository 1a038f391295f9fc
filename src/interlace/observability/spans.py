"""The spans of one traced request: its SERVER span, and a CLIENT span per upstream attempt.

A :class:`RequestTrace` is created by the tracing middleware for each HTTP request and reaches the
router on :attr:`RouteContext.trace <interlace.routing.context.RouteContext.trace>`. The attempt loop
asks it for an :class:`AttemptSpan` per upstream attempt: a child of the server span, named
``{gen_ai.operation.name} {gen_ai.request.model}``, whose context is sent upstream as
``traceparent``/``tracestate`` (see :mod:`interlace.observability.propagation`).

A streamed attempt's span ends with the stream, carrying the usage of its final chunk; when the
request ends, the server span is given the routing outcome (``interlace.*``) and ended.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from typing import TYPE_CHECKING, Any, TypeVar, cast
from urllib.parse import urlsplit

from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from interlace.core.errors import InterlaceError
from interlace.observability import genai
from interlace.observability.propagation import UPSTREAM_TRACE_HEADERS

if TYPE_CHECKING:
    from collections.abc import Awaitable, Mapping

    from opentelemetry.trace import Span, Tracer
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
    from opentelemetry.util.types import AttributeValue

    from interlace.routing.context import RouteContext
    from interlace.routing.deployment import Deployment, ModelRoute

__all__ = ["AttemptSpan", "RequestTrace", "error_type"]

T = TypeVar("T")

Chunks = AsyncGenerator[dict[str, Any], None]


class RequestTrace:
    """The server span of one request, and the parent of its attempts' client spans."""

    __slots__ = ("_propagator", "_servers", "_tracer", "context", "route", "span")

    def __init__(
        self,
        span: Span,
        *,
        tracer: Tracer,
        propagator: TraceContextTextMapPropagator,
        servers: dict[str, tuple[str, int] | None],
    ) -> None:
        self.span = span
        self.context = trace.set_span_in_context(span)
        self.route: RouteContext | None = None
        """The request's routing context, once the router made an attempt (for the outcome)."""
        self._tracer = tracer
        self._propagator = propagator
        self._servers = servers

    @property
    def trace_id(self) -> str:
        """The W3C trace id (32 hex digits), e.g. for logs and request records."""
        return format(self.span.get_span_context().trace_id, "032x")

    def attempt(
        self, route: ModelRoute, deployment: Deployment, ctx: RouteContext, *, stream: bool
    ) -> AttemptSpan:
        """Start the client span of one upstream attempt (a child of this request's server span)."""
        self.route = ctx
        config = deployment.config
        operation = genai.operation_name(ctx.operation)
        provider = genai.provider_name(deployment.provider.kind, config.api_style)
        attributes: dict[str, AttributeValue] = {
            genai.OPERATION: operation,
            genai.PROVIDER: provider,
            genai.SYSTEM: provider,
            genai.REQUEST_MODEL: config.model,
            genai.DEPLOYMENT: deployment.name,
            genai.MODEL_ALIAS: route.alias,
            genai.ATTEMPT: len(ctx.attempts) + 1,
            genai.FALLBACK: ctx.fallback,
        }
        if stream:
            attributes[genai.REQUEST_STREAM] = True
        server = self._server(deployment)
        if server is not None:
            attributes[genai.SERVER_ADDRESS], attributes[genai.SERVER_PORT] = server
        span = self._tracer.start_span(
            f"{operation} {config.model}", context=self.context, kind=SpanKind.CLIENT, attributes=attributes
        )
        headers: dict[str, str] = {}
        self._propagator.inject(headers, context=trace.set_span_in_context(span))
        return AttemptSpan(span, headers)

    def end(self, attributes: Mapping[str, AttributeValue]) -> None:
        """Record the HTTP ``attributes`` and the routing outcome on the server span, and end it."""
        span = self.span
        if span.is_recording():
            outcome = dict(attributes)
            ctx = self.route
            if ctx is not None:
                outcome[genai.ATTEMPTS] = len(ctx.attempts)
                outcome[genai.FALLBACK] = ctx.fallback
                if ctx.requested_model is not None:
                    outcome[genai.REQUESTED_MODEL] = ctx.requested_model
                if ctx.served_model is not None:
                    outcome[genai.MODEL_ALIAS] = ctx.served_model
                if ctx.deployment is not None:
                    outcome[genai.DEPLOYMENT] = ctx.deployment
                if ctx.rule is not None:
                    outcome[genai.RULE] = ctx.rule
                if ctx.recovered:
                    outcome[genai.RECOVERED] = ctx.recovered
                if ctx.required_tags:
                    outcome[genai.REQUIRED_TAGS] = [f"{k}={v}" for k, v in ctx.required_tags.items()]
            span.set_attributes(outcome)
        span.end()

    def _server(self, deployment: Deployment) -> tuple[str, int] | None:
        """``server.address``/``server.port`` of an HTTP deployment (cached per deployment)."""
        name = deployment.name
        if name not in self._servers:
            client = getattr(deployment.provider, "client", None)
            base_url = getattr(client, "base_url", None)
            self._servers[name] = _address(base_url) if isinstance(base_url, str) else None
        return self._servers[name]


class AttemptSpan:
    """The client span of one upstream attempt, ended by :meth:`succeeded` (or its stream) or :meth:`failed`.

    Its ``headers`` carry the span's context upstream while :meth:`propagate` awaits the provider call.
    """

    __slots__ = ("headers", "span")

    def __init__(self, span: Span, headers: dict[str, str]) -> None:
        self.span = span
        self.headers = headers
        """``traceparent`` (and ``tracestate``) naming this span as the upstream request's parent."""

    async def propagate(self, work: Awaitable[T]) -> T:
        """Await the provider call with this span's trace headers on every upstream request it sends."""
        token = UPSTREAM_TRACE_HEADERS.set(self.headers)
        try:
            return await work
        finally:
            UPSTREAM_TRACE_HEADERS.reset(token)

    def succeeded(self, result: T, *, elapsed: float, stream: bool) -> T:
        """Record the answer; a stream (an async generator of chunks) is followed to its end."""
        if stream and isinstance(result, AsyncGenerator):
            self.span.set_attribute(genai.TIME_TO_FIRST_CHUNK, elapsed)
            return cast("T", self._follow(cast("Chunks", result)))
        if self.span.is_recording():
            self.span.set_attributes(genai.answer_attributes(result))
        self.span.end()
        return result

    def failed(self, error: BaseException) -> None:
        self._fail(error)
        self.span.end()

    def _fail(self, error: BaseException) -> None:
        self.span.set_attribute(genai.ERROR_TYPE, error_type(error))
        message = error.message if isinstance(error, InterlaceError) else str(error)
        self.span.set_status(Status(StatusCode.ERROR, message[:500] or None))

    async def _follow(self, stream: Chunks) -> Chunks:
        """Pass the chunks through, noting usage and finish reasons; end the span with the stream."""
        facts = genai.StreamFacts()
        try:
            async for chunk in stream:
                facts.add(chunk)
                yield chunk
        except GeneratorExit:
            if not facts.finished:  # the consumer went away before the answer was complete
                self._fail(asyncio.CancelledError("stream closed before it finished"))
            raise
        except BaseException as error:
            self._fail(error)
            raise
        finally:
            try:
                await stream.aclose()
            finally:
                if self.span.is_recording():
                    self.span.set_attributes(facts.attributes())
                self.span.end()


def error_type(error: BaseException) -> str:
    """``error.type``: an Interlace error's stable code, ``cancelled``, or the exception's class."""
    if isinstance(error, InterlaceError):
        return error.code
    if isinstance(error, asyncio.CancelledError):
        return "cancelled"
    kind = type(error)
    return kind.__qualname__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__qualname__}"


def _address(base_url: str) -> tuple[str, int] | None:
    parts = urlsplit(base_url)
    if not parts.hostname:
        return None
    try:
        port = parts.port
    except ValueError:
        return None
    return parts.hostname, port or (443 if parts.scheme == "https" else 80)
