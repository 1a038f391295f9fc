"""Rate limits and budgets: ``limits:`` of a model or a tenant, ``budget:`` of a tenant, ``quotas:``.

Example::

    quotas:
      on_store_error: open          # Redis unreachable: let requests through (logged, counted)
      default_output_tokens: 1024   # reserved for a chat request that gives no max_tokens
    models:
      gpt-4o-mini:
        limits: {rpm: 600, tpm: 200000}     # across every caller of the alias
        deployments: [...]
    tenants:
      acme:
        limits: {rpm: 120, tpm: 60000}
        budget: {usd: 500, soft_usd: 400, period: month}

A key's own limits and budget come with its credential (:class:`~interlace.core.principal.Limits`).
Every limit that applies to a request is checked and reserved at once: all or nothing.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from interlace.config._base import Strict

__all__ = ["BudgetConfig", "BudgetPeriod", "QuotasConfig", "RateLimits", "StoreErrorPolicy"]

BudgetPeriod = Literal["day", "month", "total"]
StoreErrorPolicy = Literal["open", "closed"]


class RateLimits(Strict):
    """Requests and tokens per minute, over a sliding 60-second window; unset is unlimited."""

    rpm: int | None = Field(None, ge=1, description="Requests per minute.")
    tpm: int | None = Field(
        None,
        ge=1,
        description="Tokens (input + output) per minute; a request reserves its prompt estimate plus its "
        "max_tokens (or quotas.default_output_tokens) and settles with its real usage.",
    )


class BudgetConfig(Strict):
    """Spend per period (UTC day, calendar month, or ever), priced by the deployments' ``price``."""

    usd: float | None = Field(
        None, gt=0, description="Hard limit: a request whose worst-case cost does not fit is refused (429)."
    )
    soft_usd: float | None = Field(
        None, gt=0, description="Alert (log, metric, audit decision) when spend crosses it; not refused."
    )
    period: BudgetPeriod = Field("month", description="day | month | total (UTC).")

    @model_validator(mode="after")
    def _soft_below_hard(self) -> BudgetConfig:
        if self.usd is not None and self.soft_usd is not None and self.soft_usd > self.usd:
            msg = f"soft_usd ({self.soft_usd}) must not exceed usd ({self.usd})"
            raise ValueError(msg)
        return self


class QuotasConfig(Strict):
    """How rate limits and budgets are enforced (where they are set: keys, tenants, models)."""

    on_store_error: StoreErrorPolicy = Field(
        "open",
        description="When Redis fails: 'open' lets requests through unchecked (a Redis outage must not "
        "take the gateway down; the upstreams keep their own limits), 'closed' refuses them with 503. "
        "Either way it is logged once per outage and counted in interlace_quota_store_errors_total.",
    )
    default_output_tokens: int = Field(
        4096,
        ge=0,
        description="Output tokens reserved for a chat request without max_tokens/max_completion_tokens.",
    )
    store_timeout: float = Field(
        1.0,
        gt=0,
        description="Seconds Redis may take to accept a connection or answer a command before the quota "
        "check counts as failed (not the time a request waits for a free connection in a burst).",
    )
    recheck: float = Field(
        1.0, gt=0, description="After a Redis failure, seconds before Redis is asked again."
    )
