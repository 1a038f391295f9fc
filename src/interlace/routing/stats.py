"""Live per-deployment figures the router keeps and the routing strategies read.

One :class:`DeploymentStats` per deployment, owned by the router (nothing here is global). The router
calls :meth:`~DeploymentStats.started` before an attempt and exactly one of
:meth:`~DeploymentStats.finished` or :meth:`~DeploymentStats.cancelled` after it. Each call is a few
integer and float operations; there is no lock, because the router runs on one event loop.

Latency is an exponentially weighted moving average (EWMA) of seconds per attempt:

- a **success** moves it ``alpha`` of the way towards the measured latency (the first success sets it);
- a **failure** never makes a deployment look faster: it feeds the sample
  ``max(latency_s, ewma * failure_penalty)``, so a deployment that fails fast (connection refused,
  an instant 503) is pushed *away* from the front of a lowest-latency ordering instead of towards it,
  and a timeout counts with its full duration. A failure before any success leaves the EWMA unset:
  the deployment is still unmeasured, and repeated failures are the circuit breaker's business;
- a **cancellation** (the client went away) says nothing about the deployment and is not counted.

The router should feed one consistent measure per deployment, e.g. the time to the response headers
or first chunk: total time of a chat completion mostly measures how many tokens were asked for.
"""

from __future__ import annotations

__all__ = ["DeploymentStats"]


class DeploymentStats:
    """In-flight count, request and failure counters and an EWMA of latency for one deployment."""

    __slots__ = ("_alpha", "_penalty", "ewma_latency", "failures", "in_flight", "requests")

    def __init__(self, *, alpha: float = 0.2, failure_penalty: float = 2.0) -> None:
        if not 0.0 < alpha <= 1.0:
            raise ValueError(f"alpha must be in (0, 1], got {alpha}")
        if failure_penalty < 1.0:
            raise ValueError(f"failure_penalty must be at least 1, got {failure_penalty}")
        self._alpha = alpha
        self._penalty = failure_penalty
        self.in_flight = 0
        """Attempts started and not yet finished or cancelled."""
        self.requests = 0
        """Attempts finished, successful or not (cancelled ones excluded)."""
        self.failures = 0
        """Attempts finished with ``ok=False``."""
        self.ewma_latency: float | None = None
        """Seconds; ``None`` until the first successful attempt."""

    @property
    def alpha(self) -> float:
        """Weight of the newest sample in the EWMA."""
        return self._alpha

    def started(self) -> None:
        """An attempt was sent to this deployment."""
        self.in_flight += 1

    def finished(self, latency_s: float, ok: bool) -> None:
        """An attempt ended after ``latency_s`` seconds; ``ok`` is false when it failed."""
        if self.in_flight > 0:
            self.in_flight -= 1
        self.requests += 1
        latency_s = max(latency_s, 0.0)
        ewma = self.ewma_latency
        if ok:
            self.ewma_latency = latency_s if ewma is None else ewma + self._alpha * (latency_s - ewma)
            return
        self.failures += 1
        if ewma is not None:
            sample = max(latency_s, ewma * self._penalty)
            self.ewma_latency = ewma + self._alpha * (sample - ewma)

    def cancelled(self) -> None:
        """An attempt was abandoned by the caller; it counts neither as a success nor as a failure."""
        if self.in_flight > 0:
            self.in_flight -= 1

    @property
    def failure_ratio(self) -> float:
        """Failures over finished attempts since start (0.0 before any)."""
        return self.failures / self.requests if self.requests else 0.0

    def __repr__(self) -> str:
        ewma = "unmeasured" if self.ewma_latency is None else f"{self.ewma_latency * 1000:.1f} ms"
        return (
            f"DeploymentStats(in_flight={self.in_flight}, requests={self.requests}, "
            f"failures={self.failures}, ewma_latency={ewma})"
        )
