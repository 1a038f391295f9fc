"""The seam that carries an attempt's W3C trace headers to the upstream HTTP request.

The attempt loop opens a client span per upstream attempt and sets :data:`UPSTREAM_TRACE_HEADERS`
to that span's ``traceparent``/``tracestate`` for the duration of the provider call;
:class:`~interlace.providers._http.UpstreamClient` adds them to the request it sends. A context
variable (rather than a headers argument on every provider method) keeps the provider port
unchanged, is scoped to the attempt's own task, and costs one ``ContextVar.get`` when tracing is off.

This module imports no OpenTelemetry code, so the HTTP client depends on nothing optional.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["UPSTREAM_TRACE_HEADERS"]

#: ``traceparent`` (and ``tracestate``) of the attempt in progress; None when it is not traced.
UPSTREAM_TRACE_HEADERS: ContextVar[Mapping[str, str] | None] = ContextVar(
    "interlace_upstream_trace_headers", default=None
)
