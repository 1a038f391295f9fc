"""OpenTelemetry tracing of the gateway: one :class:`Tracing` per runtime, built from ``telemetry:``.

It owns its own ``TracerProvider`` — the process-global provider is never set, the tracer is passed
down explicitly — exporting over OTLP/HTTP through a batch processor when ``telemetry.otlp_endpoint``
is configured. Tests inject a span exporter instead (``Runtime(config, span_exporter=...)``), which is
called synchronously as each span ends::

    telemetry:
      otlp_endpoint: http://127.0.0.1:4318        # /v1/traces is added when no path is given
      service_name: interlace-eu
      sample_ratio: 0.25                           # of new traces; a caller's sampled flag is followed
      headers: {authorization: "Bearer ${OTLP_TOKEN}"}

Without an endpoint (or an injected exporter) tracing is :meth:`Tracing.disabled`: no OpenTelemetry
object is created and none of its modules is imported here (the API only with a provider, the SDK
only to build one), the gateway adds no tracing middleware, requests carry no trace, and the only
cost left on the hot path is one ``is None`` test per attempt and one ``ContextVar.get`` per
upstream request.

W3C ``traceparent``/``tracestate`` sent by the client are continued by the server span; each
attempt's client span is propagated to the upstream in the same headers.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Final
from urllib.parse import urlsplit

import interlace

if TYPE_CHECKING:
    from collections.abc import Mapping

    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter
    from opentelemetry.trace import Tracer
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
    from opentelemetry.util.types import AttributeValue

    from interlace.config.schema import TelemetryConfig
    from interlace.observability.spans import RequestTrace

__all__ = ["TRACE_SCOPE_KEY", "Tracing", "traces_endpoint"]

#: Where the tracing middleware leaves the request's :class:`RequestTrace` in the ASGI scope.
TRACE_SCOPE_KEY: Final = "interlace.trace"


class Tracing:
    """A runtime's tracer, or the disabled stand-in that creates nothing."""

    __slots__ = ("_propagator", "_provider", "_servers", "_tracer")

    def __init__(self, provider: TracerProvider | None = None) -> None:
        self._provider = provider
        self._tracer: Tracer | None = None
        self._propagator: TraceContextTextMapPropagator | None = None
        if provider is not None:  # the OpenTelemetry API only when tracing is on
            from opentelemetry.trace.propagation.tracecontext import (  # noqa: PLC0415
                TraceContextTextMapPropagator,
            )

            self._tracer = provider.get_tracer("interlace", interlace.__version__)
            self._propagator = TraceContextTextMapPropagator()
        # server.address/port per deployment name, filled on first use (deployments never change)
        self._servers: dict[str, tuple[str, int] | None] = {}

    @classmethod
    def disabled(cls) -> Tracing:
        """No provider, no exporter: the gateway installs no middleware and routes untraced."""
        return cls(None)

    @classmethod
    def from_config(cls, config: TelemetryConfig, *, span_exporter: SpanExporter | None = None) -> Tracing:
        """Enabled when ``otlp_endpoint`` is set or an exporter is injected (which then wins)."""
        if span_exporter is None and config.otlp_endpoint is None:
            return cls.disabled()
        return cls(_provider(config, span_exporter))

    @property
    def enabled(self) -> bool:
        return self._tracer is not None

    def start_request(
        self, name: str, carrier: Mapping[str, str], attributes: Mapping[str, AttributeValue]
    ) -> RequestTrace:
        """Start a request's SERVER span, continuing the caller's trace when ``carrier`` names one."""
        if self._tracer is None or self._propagator is None:
            msg = "tracing is disabled: install no tracing middleware"
            raise RuntimeError(msg)
        from opentelemetry.trace import SpanKind  # noqa: PLC0415 - loaded with the provider

        from interlace.observability.spans import RequestTrace  # noqa: PLC0415

        parent = self._propagator.extract(carrier)
        span = self._tracer.start_span(name, context=parent, kind=SpanKind.SERVER, attributes=attributes)
        return RequestTrace(span, tracer=self._tracer, propagator=self._propagator, servers=self._servers)

    async def aclose(self) -> None:
        """Export what is still queued and stop the exporter (off the event loop: it may block)."""
        if self._provider is not None:
            await asyncio.to_thread(self._provider.shutdown)


def traces_endpoint(endpoint: str) -> str:
    """The OTLP/HTTP traces URL: ``/v1/traces`` is added to an endpoint given without a path."""
    if urlsplit(endpoint).path.strip("/"):
        return endpoint
    return endpoint.rstrip("/") + "/v1/traces"


def _provider(config: TelemetryConfig, span_exporter: SpanExporter | None) -> TracerProvider:
    # the SDK is imported only when tracing is on
    from opentelemetry.sdk.resources import Resource  # noqa: PLC0415
    from opentelemetry.sdk.trace import TracerProvider  # noqa: PLC0415
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor  # noqa: PLC0415
    from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased  # noqa: PLC0415

    provider = TracerProvider(
        sampler=ParentBased(TraceIdRatioBased(config.sample_ratio)),
        resource=Resource.create(
            {"service.name": config.service_name, "service.version": interlace.__version__}
        ),
        shutdown_on_exit=False,  # the runtime shuts it down; no atexit hook keeps it alive
    )
    if span_exporter is not None:
        provider.add_span_processor(SimpleSpanProcessor(span_exporter))
        return provider
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter  # noqa: PLC0415

    assert config.otlp_endpoint is not None
    exporter = OTLPSpanExporter(endpoint=traces_endpoint(config.otlp_endpoint), headers=dict(config.headers))
    provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider
