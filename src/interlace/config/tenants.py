"""``tenants:``: the policies of each tenant, by tenant id.

Every API key and token belongs to one tenant; a tenant not listed here gets the defaults (no limits
beyond the key's own, PII and residency as configured globally).
"""

from __future__ import annotations

from interlace.config._base import Strict

__all__ = ["TenantConfig"]


class TenantConfig(Strict):
    """One tenant's policies; each feature adds its section."""
