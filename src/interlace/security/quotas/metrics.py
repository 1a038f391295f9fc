"""The quota metrics, a collector the runtime registers with its Prometheus registry.

=========================================================  ==============================================
``interlace_quota_store_errors_total``                      {policy=open|closed}: requests checked while
                                                             the quota store failed
``interlace_quota_rejections_total``                        {scope=key|tenant|model, kind=requests|tokens|
                                                             budget}: requests refused by a limit
``interlace_budget_soft_limit_crossings_total``             {scope=key|tenant}: soft budgets crossed
=========================================================  ==============================================

Label values are fixed words, never a key, tenant or model name.
"""

from __future__ import annotations

from interlace.observability.families import CounterFamily, Families

__all__ = ["QuotaMetrics"]


class QuotaMetrics(Families):
    def __init__(self) -> None:
        self.store_errors = CounterFamily(
            "interlace_quota_store_errors",
            "Requests whose quota check failed because the store did not answer, by on_store_error policy.",
            ("policy",),
        )
        self.rejections = CounterFamily(
            "interlace_quota_rejections", "Requests refused by a rate limit or budget.", ("scope", "kind")
        )
        self.soft_crossings = CounterFamily(
            "interlace_budget_soft_limit_crossings", "Soft budgets crossed in their period.", ("scope",)
        )
        super().__init__([self.store_errors, self.rejections, self.soft_crossings])
