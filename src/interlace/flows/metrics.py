"""What a running flow counts: plain :class:`FlowStats` (progress, ``flow status``) and Prometheus.

==========================================================  ==========================================
``interlace_flow_messages_in_total``                         {flow}: deliveries received
``interlace_flow_messages_out_total``                        {flow, sink}: messages the sinks confirmed
``interlace_flow_acked_total``                               {flow}: deliveries acknowledged
``interlace_flow_nacked_total``                              {flow}: deliveries handed back (redelivered)
``interlace_flow_step_messages_total``                       {flow, step, outcome=ok|error}
``interlace_flow_errors_total``                              {flow, step}: failed attempts
``interlace_flow_dead_letters_total``                        {flow, step}
``interlace_flow_in_flight``                                 {flow}: unacknowledged deliveries
``interlace_flow_lag``                                       {flow}: messages waiting at the source, when
                                                             the source knows (``lag()``)
==========================================================  ==========================================

Label values are the configured flow, step and sink names only. Each :class:`FlowMetrics` has its own
``CollectorRegistry`` unless one is passed (the process-global registry is never used).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge

__all__ = ["FlowMetrics", "FlowStats"]


@dataclass(slots=True)
class FlowStats:
    """Counters of one flow run (this process)."""

    received: int = 0
    acked: int = 0
    nacked: int = 0
    out: int = 0
    """Messages the sinks confirmed (a message fanned out to two sinks counts twice)."""
    dropped: int = 0
    """Acknowledged without output (filtered, deduplicated)."""
    errors: int = 0
    """Failed attempts of steps and sink writes (a retried success counts its failures)."""
    dead_letters: int = 0
    in_flight: int = 0
    lag: int | None = None
    started_at: float = field(default_factory=time.time)
    steps: dict[str, dict[str, int]] = field(default_factory=dict)
    """Per step: ``{"ok": n, "error": n, "dead_letters": n}``."""

    def step(self, name: str, outcome: str, count: int = 1) -> None:
        counts = self.steps.setdefault(name, {"ok": 0, "error": 0, "dead_letters": 0})
        counts[outcome] = counts.get(outcome, 0) + count

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class FlowMetrics:
    """The Prometheus families of flows; one instance serves every flow of a process."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=True)
        r = self.registry
        self.received = Counter("interlace_flow_messages_in", "Deliveries received.", ["flow"], registry=r)
        self.out = Counter(
            "interlace_flow_messages_out", "Messages confirmed by a sink.", ["flow", "sink"], registry=r
        )
        self.acked = Counter("interlace_flow_acked", "Deliveries acknowledged.", ["flow"], registry=r)
        self.nacked = Counter("interlace_flow_nacked", "Deliveries handed back.", ["flow"], registry=r)
        self.steps = Counter(
            "interlace_flow_step_messages",
            "Messages through a step.",
            ["flow", "step", "outcome"],
            registry=r,
        )
        self.errors = Counter("interlace_flow_errors", "Failed attempts.", ["flow", "step"], registry=r)
        self.dead_letters = Counter(
            "interlace_flow_dead_letters", "Messages dead-lettered.", ["flow", "step"], registry=r
        )
        self.in_flight = Gauge("interlace_flow_in_flight", "Unacknowledged deliveries.", ["flow"], registry=r)
        self.lag = Gauge("interlace_flow_lag", "Messages waiting at the source.", ["flow"], registry=r)
