"""Gauges read from live state when ``/metrics`` is scraped, never maintained on the request path.

- ``interlace_requests_in_flight{operation}``: API requests begun and not yet recorded.
- ``interlace_deployment_in_flight{model,deployment}``: bulkhead slots held — attempts in progress
  and open streams (a stream keeps its slot until its last chunk; the attempt's own in-flight count,
  ``Deployment.stats.in_flight``, ends at the first token).
- ``interlace_deployment_queued{model,deployment}``: requests waiting for a bulkhead slot.
- ``interlace_breaker_state{model,deployment,state}``: 1 for the breaker's state, 0 for the others.
- ``interlace_breaker_failure_rate{model,deployment}``: failures over outcomes in the breaker's window.

Breaker state lives in the breaker store (in process, or Redis), which is asynchronous:
:meth:`LiveState.refresh` snapshots every breaker before each scrape, and the collector reads that.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from interlace.resilience.breaker import BreakerSnapshot, BreakerState

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from prometheus_client import Metric

    from interlace.resilience.breaker import Breakers
    from interlace.routing.deployment import Deployment, ModelRoute

__all__ = ["LiveState"]

log = logging.getLogger("interlace.observability.metrics")

_STATES = tuple(BreakerState)


class LiveState(Collector):
    """A prometheus collector of the gateway's live gauges (register it with a registry)."""

    def __init__(self) -> None:
        self._deployments: list[tuple[ModelRoute, Deployment]] = []
        self._breakers: Breakers | None = None
        self._snapshots: dict[str, BreakerSnapshot] = {}
        self._requests: list[Mapping[str, int]] = []

    def watch_routes(self, routes: Mapping[str, ModelRoute], breakers: Breakers) -> None:
        """Report these routes' deployments (bulkheads) and their breakers."""
        self._deployments = [(route, d) for route in routes.values() for d in route.deployments]
        self._breakers = breakers

    def watch_requests(self, in_flight: Mapping[str, int]) -> None:
        """Report a live ``operation -> requests in flight`` map (one per app; they are added up)."""
        self._requests.append(in_flight)

    async def refresh(self) -> None:
        """Snapshot every breaker (before a scrape); a store that fails leaves its gauges out."""
        breakers = self._breakers
        if breakers is None:
            return
        results = await asyncio.gather(
            *(breakers.snapshot(d.name, route.config.breaker) for route, d in self._deployments),
            return_exceptions=True,
        )
        snapshots: dict[str, BreakerSnapshot] = {}
        for (_, deployment), result in zip(self._deployments, results, strict=True):
            if isinstance(result, BreakerSnapshot):
                snapshots[deployment.name] = result
            else:
                log.warning("metrics: no breaker state for %s (%s)", deployment.name, result)
        self._snapshots = snapshots

    def describe(self) -> Iterable[Metric]:
        return self._families()

    def collect(self) -> Iterable[Metric]:
        requests, in_flight, queued, state, failure_rate = self._families()
        totals: dict[str, int] = {}
        for source in self._requests:
            for operation, count in source.items():
                totals[operation] = totals.get(operation, 0) + count
        for operation, count in sorted(totals.items()):
            requests.add_metric([operation], count)
        for route, deployment in self._deployments:
            labels = [route.alias, deployment.name]
            in_flight.add_metric(labels, deployment.bulkhead.in_flight)
            queued.add_metric(labels, deployment.bulkhead.queued)
            snapshot = self._snapshots.get(deployment.name)
            if snapshot is not None:
                for each in _STATES:
                    state.add_metric([*labels, each.value], 1.0 if snapshot.state is each else 0.0)
                failure_rate.add_metric(labels, snapshot.failure_rate)
        return [requests, in_flight, queued, state, failure_rate]

    @staticmethod
    def _families() -> tuple[
        GaugeMetricFamily, GaugeMetricFamily, GaugeMetricFamily, GaugeMetricFamily, GaugeMetricFamily
    ]:
        deployment = ["model", "deployment"]
        return (
            GaugeMetricFamily(
                "interlace_requests_in_flight",
                "API requests begun and not yet answered.",
                labels=["operation"],
            ),
            GaugeMetricFamily(
                "interlace_deployment_in_flight",
                "Bulkhead slots held: attempts in progress and open streams.",
                labels=deployment,
            ),
            GaugeMetricFamily(
                "interlace_deployment_queued", "Requests waiting for a bulkhead slot.", labels=deployment
            ),
            GaugeMetricFamily(
                "interlace_breaker_state",
                "1 for the circuit breaker's current state, 0 for the others.",
                labels=[*deployment, "state"],
            ),
            GaugeMetricFamily(
                "interlace_breaker_failure_rate",
                "Failures over outcomes in the breaker's window (0 when empty).",
                labels=deployment,
            ),
        )
