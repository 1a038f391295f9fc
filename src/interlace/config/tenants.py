"""``tenants:``: the policies of each tenant, by tenant id.

Every API key and token belongs to one tenant; a tenant not listed here gets the defaults (no limits
beyond the key's own, PII and residency as configured globally).
"""

from __future__ import annotations

from pydantic import Field

from interlace.config._base import Strict
from interlace.config.pii import PiiTenantConfig
from interlace.config.quotas import BudgetConfig, RateLimits
from interlace.config.residency import ResidencyConfig

__all__ = ["TenantConfig"]


class TenantConfig(Strict):
    """One tenant's policies; each feature adds its section."""

    residency: ResidencyConfig | None = Field(
        None, description="Where this tenant's requests may go; replaces the global residency rule."
    )
    pii: PiiTenantConfig | None = Field(
        None, description="PII masking or blocking for this tenant; each key given overrides the global one."
    )
    limits: RateLimits | None = Field(
        None, description="Requests and tokens per minute of all the tenant's keys and tokens together."
    )
    budget: BudgetConfig | None = Field(
        None, description="The tenant's spend per period: hard (429 insufficient_quota) and soft (alert)."
    )
