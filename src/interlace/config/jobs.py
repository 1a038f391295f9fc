"""``jobs:``: the durable job queue, its workers, and the webhooks sent when a job ends.

Example::

    jobs:
      worker: {enabled: true, concurrency: 8}   # the in-process worker of `interlace serve`
      lease_seconds: 60          # a job whose worker stops heartbeating is re-claimed after this
      max_attempts: 5            # retryable failures (429, 5xx, timeouts) past this go to dead letters
      backoff: {initial: 1, maximum: 300, multiplier: 2}
      tenant_concurrency: 16     # running jobs per tenant, across every worker
      webhooks:
        allow: [hooks.example.com, 10.20.0.0/16]   # also needed for private/loopback targets
        retry_schedule: [5, 30, 120, 600, 1800]    # seconds before each redelivery
        timeout: 10
"""

from __future__ import annotations

from pydantic import Field

from interlace.config._base import Strict

__all__ = ["BackoffConfig", "JobsConfig", "WebhooksConfig", "WorkerConfig"]


class BackoffConfig(Strict):
    """Delay before a retryable failure's next attempt: ``initial * multiplier**(attempt-1)``, capped."""

    initial: float = Field(1.0, gt=0, description="Seconds before the second attempt.")
    maximum: float = Field(300.0, gt=0, description="The longest delay between two attempts.")
    multiplier: float = Field(2.0, ge=1)

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        return float(min(self.maximum, self.initial * self.multiplier ** max(0, attempt - 1)))


class WorkerConfig(Strict):
    enabled: bool = Field(
        default=True, description="Run a worker inside `interlace serve` (the embedded default)."
    )
    concurrency: int = Field(8, ge=1, le=1024, description="Jobs one worker process runs at once.")
    poll_interval: float = Field(0.5, gt=0, le=60, description="Seconds between polls of an idle queue.")


class WebhooksConfig(Strict):
    allow: list[str] = Field(
        default_factory=list,
        description=(
            "Callback hosts or CIDRs allowed besides public addresses. Targets that resolve to private, "
            "loopback, link-local or reserved addresses are refused unless listed here."
        ),
    )
    allow_public: bool = Field(
        default=True, description="Allow any target that resolves only to public addresses."
    )
    retry_schedule: list[float] = Field(
        default_factory=lambda: [5.0, 30.0, 120.0, 600.0, 1800.0, 7200.0],
        description="Seconds before each redelivery; a delivery fails for good after the last one.",
    )
    timeout: float = Field(10.0, gt=0, le=120, description="Seconds a receiver has to answer.")


class JobsConfig(Strict):
    worker: WorkerConfig = Field(default_factory=WorkerConfig)
    lease_seconds: float = Field(
        60.0, ge=1, description="A running job's lease; its worker renews it, another re-claims it after."
    )
    max_attempts: int = Field(5, ge=1, le=100, description="Attempts before a job goes to dead letters.")
    backoff: BackoffConfig = Field(default_factory=BackoffConfig)
    tenant_concurrency: int | None = Field(
        None, ge=1, description="Running jobs per tenant across all workers; None is no limit."
    )
    webhooks: WebhooksConfig = Field(default_factory=WebhooksConfig)
