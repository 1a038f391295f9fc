"""Prometheus metrics: a :class:`RequestObserver` counting every finished request, served at ``/metrics``.

Each :class:`Metrics` owns its own ``CollectorRegistry`` (the process-global default registry is never
used, so two runtimes in one process never share or clash). Per record it updates — plain dictionary
updates on the event loop's thread (:mod:`interlace.observability.families`), a few microseconds a
request — with label values bounded by configuration (:mod:`interlace.observability.labels`):

==========================================================  ===============================================
``interlace_requests_total``                                 {model, deployment, operation, status}
``interlace_request_duration_seconds`` (histogram)           {model, deployment, operation, status}
``interlace_errors_total``                                   {model, operation, code}
``interlace_tokens_total``                                   {model, type=input|output|cached|reasoning}
``interlace_cost_usd_total``                                 {model}
``interlace_time_to_first_token_seconds`` (histogram)        {model, deployment}, streams
``interlace_stream_chunk_gap_seconds`` (histogram)           {model, deployment}, a sample per stream
``interlace_attempts_total``                                 {model, deployment, outcome=ok|error code}
``interlace_retries_total``                                  {model}: attempts after the first
``interlace_fallbacks_total``                                {model}: requests answered by a fallback
``interlace_recovered_streams_total``                        {model}: cut streams continued
``interlace_rejections_total``                               {model, reason=rate_limited|capacity|unavailable}
``interlace_prompt_cache_hits_total``                        {model}: answers with cached input tokens
``interlace_confidence`` (histogram)                         {model, operation}: logprobs or classifier score
``interlace_shadow_requests_total``                          {model, status}: mirrored calls, counted apart
``interlace_shadow_cost_usd_total``                          {model}
==========================================================  ===============================================

``model`` is the alias that served the request, else the one asked for; a shadow call counts only in
the ``shadow`` metrics. Live gauges (in flight, queued, breaker state) come from
:class:`~interlace.observability.live.LiveState`, refreshed by :meth:`Metrics.refresh` before a scrape.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4

from interlace.observability.families import CounterFamily, Families, HistogramFamily
from interlace.observability.labels import LabelPolicy, status_class
from interlace.observability.live import LiveState
from interlace.observability.observer import RequestObserver

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from interlace.observability.record import RequestRecord
    from interlace.resilience.breaker import Breakers
    from interlace.routing.deployment import ModelRoute

__all__ = ["CONTENT_TYPE", "Metrics"]

CONTENT_TYPE: Final = CONTENT_TYPE_PLAIN_0_0_4
"""The classic Prometheus text format (0.0.4), which every scraper reads; the names need no escaping."""

_LATENCY: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
_FIRST_TOKEN: Final = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0)
_GAP: Final = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
_CONFIDENCE: Final = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 1.0)
_TOO_MANY_REQUESTS: Final = 429
_REJECTIONS: Final = {"capacity_exceeded": "capacity", "deployments_unavailable": "unavailable"}
_REQUEST: Final = ("model", "deployment", "operation", "status")
_STREAM: Final = ("model", "deployment")
_MODEL: Final = ("model",)


class Metrics(RequestObserver):
    """Counts every finished request (a ``RequestObserver``) into its own Prometheus registry."""

    def __init__(self, *, models: Iterable[str], deployments: Iterable[str]) -> None:
        self.labels = LabelPolicy(models=models, deployments=deployments)
        self.requests = CounterFamily("interlace_requests", "API requests answered.", _REQUEST)
        self.duration = HistogramFamily(
            "interlace_request_duration_seconds",
            "Time to answer, to the last byte of a stream.",
            _REQUEST,
            _LATENCY,
        )
        self.errors = CounterFamily(
            "interlace_errors", "Requests that failed, by error code.", ("model", "operation", "code")
        )
        self.tokens = CounterFamily("interlace_tokens", "Tokens used.", ("model", "type"))
        self.cost = CounterFamily("interlace_cost_usd", "Cost of the answers, USD.", _MODEL)
        self.ttft = HistogramFamily(
            "interlace_time_to_first_token_seconds",
            "Streams: from the request to the first token.",
            _STREAM,
            _FIRST_TOKEN,
        )
        self.gaps = HistogramFamily(
            "interlace_stream_chunk_gap_seconds",
            "Streams: gaps between chunks (an even sample).",
            _STREAM,
            _GAP,
        )
        self.attempts = CounterFamily(
            "interlace_attempts", "Calls to deployments, by outcome.", ("model", "deployment", "outcome")
        )
        self.retries = CounterFamily(
            "interlace_retries", "Attempts after the first one of a request.", _MODEL
        )
        self.fallbacks = CounterFamily(
            "interlace_fallbacks", "Requests answered by a fallback model.", _MODEL
        )
        self.recovered = CounterFamily("interlace_recovered_streams", "Cut streams continued.", _MODEL)
        self.rejections = CounterFamily(
            "interlace_rejections",
            "Requests refused: rate limited, at capacity, none available.",
            ("model", "reason"),
        )
        self.cache_hits = CounterFamily(
            "interlace_prompt_cache_hits",
            "Answers whose input was partly served from a prompt cache.",
            _MODEL,
        )
        self.confidence = HistogramFamily(
            "interlace_confidence",
            "Mean token probability (logprobs) or a classifier's top score.",
            ("model", "operation"),
            _CONFIDENCE,
        )
        self.shadow_requests = CounterFamily(
            "interlace_shadow_requests", "Mirrored shadow calls.", ("model", "status")
        )
        self.shadow_cost = CounterFamily("interlace_shadow_cost_usd", "Cost of shadow calls, USD.", _MODEL)
        self.live = LiveState()
        self.registry = CollectorRegistry()
        self.registry.register(
            Families(
                [
                    self.requests,
                    self.duration,
                    self.errors,
                    self.tokens,
                    self.cost,
                    self.ttft,
                    self.gaps,
                    self.attempts,
                    self.retries,
                    self.fallbacks,
                    self.recovered,
                    self.rejections,
                    self.cache_hits,
                    self.confidence,
                    self.shadow_requests,
                    self.shadow_cost,
                ]
            )
        )
        self.registry.register(self.live)

    @classmethod
    def for_routes(cls, routes: Mapping[str, ModelRoute], breakers: Breakers) -> Metrics:
        """Metrics labelled by these routes' aliases and deployments, reporting their live state."""
        metrics = cls(models=routes, deployments=[d.name for r in routes.values() for d in r.deployments])
        metrics.live.watch_routes(routes, breakers)
        return metrics

    def observe(self, record: RequestRecord) -> None:
        labels = self.labels
        model = labels.model(record.served_model or record.requested_model)
        if record.shadow:
            self.shadow_requests.inc((model, status_class(record.status)))
            if record.cost_usd:
                self.shadow_cost.inc((model,), record.cost_usd)
            return
        operation = labels.operation(record.operation)
        key = (model, labels.deployment(record.deployment), operation, status_class(record.status))
        self.requests.inc(key)
        self.duration.observe(key, record.duration_s)
        code = record.error_code
        if code is not None:
            self.errors.inc((model, operation, labels.error_code(code)))
            reason = "rate_limited" if record.status == _TOO_MANY_REQUESTS else _REJECTIONS.get(code)
            if reason is not None:
                self.rejections.inc((model, reason))
        self._count_usage(record, model)
        if record.stream:
            self._count_stream(record, (model, key[1]))
        if record.attempts:
            self._count_attempts(record, model)
        if record.confidence is not None:
            self.confidence.observe((model, operation), record.confidence)

    def _count_usage(self, record: RequestRecord, model: str) -> None:
        usage = record.usage
        tokens = self.tokens
        if usage.prompt_tokens > 0:
            tokens.inc((model, "input"), usage.prompt_tokens)
        if usage.completion_tokens > 0:
            tokens.inc((model, "output"), usage.completion_tokens)
        if usage.cached_tokens > 0:
            tokens.inc((model, "cached"), usage.cached_tokens)
            self.cache_hits.inc((model,))
        if usage.reasoning_tokens > 0:
            tokens.inc((model, "reasoning"), usage.reasoning_tokens)
        if record.cost_usd > 0:
            self.cost.inc((model,), record.cost_usd)

    def _count_stream(self, record: RequestRecord, key: tuple[str, str]) -> None:
        if record.ttft_s is not None:
            self.ttft.observe(key, record.ttft_s)
        if record.chunk_gaps_s:
            self.gaps.observe_all(key, record.chunk_gaps_s)
        if record.recovered:
            self.recovered.inc(key[:1], record.recovered)

    def _count_attempts(self, record: RequestRecord, model: str) -> None:
        labels = self.labels
        for attempt in record.attempt_log:
            outcome = attempt.outcome if attempt.outcome == "ok" else labels.error_code(attempt.outcome)
            self.attempts.inc((labels.model(attempt.model), labels.deployment(attempt.deployment), outcome))
        if record.attempts > 1:
            self.retries.inc((model,), record.attempts - 1)
        if record.fallback:
            self.fallbacks.inc((labels.model(record.requested_model),))

    async def refresh(self) -> None:
        """Read the live state that is only reachable asynchronously (breakers); call before a scrape."""
        await self.live.refresh()

    def exposition(self) -> bytes:
        """Every metric in the Prometheus text format (:data:`CONTENT_TYPE`)."""
        return generate_latest(self.registry)
