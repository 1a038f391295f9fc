"""Rate limits (requests and tokens per minute) and budgets (spend per period), exact across gateways.

::

    gate: … → RateLimitPolicy → BudgetPolicy → router        reserve: every bucket at once, or 429
    record finished → Hold.settle(record)                     settle: real usage / cost, or refund

- :mod:`.store` — the port: buckets (sliding windows, period counters), reserve / settle, all or none.
- :mod:`.memory`, :mod:`.redis` — its implementations: one process, or every gateway sharing a Redis
  (one Lua script per operation, :mod:`._lua`).
- :mod:`.ratelimit`, :mod:`.budget` — the admission policies; :mod:`.estimate` what a request may use.
- :mod:`.build` — all of it from the configuration (``limits:``, ``budget:``, ``quotas:``).
"""

from __future__ import annotations

from interlace.security.quotas.budget import BudgetPolicy
from interlace.security.quotas.build import Quotas
from interlace.security.quotas.estimate import PriceBook, output_tokens, prompt_tokens
from interlace.security.quotas.memory import MemoryQuotaStore
from interlace.security.quotas.metrics import QuotaMetrics
from interlace.security.quotas.ratelimit import RateLimitPolicy
from interlace.security.quotas.redis import RedisQuotaStore
from interlace.security.quotas.store import (
    Bucket,
    Demand,
    Denied,
    Granted,
    Level,
    QuotaStore,
    QuotaStoreError,
    Settled,
    SpendQuery,
)

__all__ = [
    "Bucket",
    "BudgetPolicy",
    "Demand",
    "Denied",
    "Granted",
    "Level",
    "MemoryQuotaStore",
    "PriceBook",
    "QuotaMetrics",
    "QuotaStore",
    "QuotaStoreError",
    "Quotas",
    "RateLimitPolicy",
    "RedisQuotaStore",
    "Settled",
    "SpendQuery",
    "output_tokens",
    "prompt_tokens",
]
