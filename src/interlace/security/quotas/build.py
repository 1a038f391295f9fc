"""The quota policies of one runtime, built from its configuration."""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, Final

from interlace.security.quotas.budget import BudgetPolicy
from interlace.security.quotas.estimate import PriceBook
from interlace.security.quotas.memory import MemoryQuotaStore
from interlace.security.quotas.metrics import QuotaMetrics
from interlace.security.quotas.ratelimit import RateLimitPolicy
from interlace.security.quotas.redis import RedisQuotaStore
from interlace.security.quotas.seed import spent_nanos

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from interlace.config.schema import Config
    from interlace.security.quotas.store import QuotaStore
    from interlace.store.database import Database

__all__ = ["Quotas"]

REDIS_CONNECTIONS: Final = 64
"""Connections of the quota client; a request beyond waits for one (within ``quotas.store_timeout``)."""


class Quotas:
    """The store (Redis when configured, else this process with spend seeded from the usage log),
    the ``rate_limits`` and ``budgets`` policies, and their metrics.

    With Redis, the quotas have a client of their own: a pool of :data:`REDIS_CONNECTIONS` that
    requests wait for (a burst must queue for a connection, not fail open as a pool that raises when
    it is exhausted would make it), and quota traffic does not compete with the breakers'.
    """

    def __init__(self, config: Config, *, database: Database) -> None:
        settings = config.quotas
        self.metrics = QuotaMetrics()
        self.store: QuotaStore
        self._redis: Redis | None = None
        if config.redis is not None:
            from redis.asyncio import BlockingConnectionPool, Redis  # noqa: PLC0415 - only when configured

            pool = BlockingConnectionPool.from_url(
                config.redis.url,
                max_connections=REDIS_CONNECTIONS,
                timeout=None,  # a burst queues for a connection; each command is bounded by:
                socket_timeout=settings.store_timeout,
                socket_connect_timeout=settings.store_timeout,
            )
            self._redis = Redis.from_pool(pool)  # closes the pool with the client
            self.store = RedisQuotaStore(
                self._redis,
                prefix=config.redis.prefix,
                recheck=settings.recheck,
                on_error=settings.on_store_error,
            )
        else:
            self.store = MemoryQuotaStore(loader=partial(spent_nanos, database))
        self.rate_limits = RateLimitPolicy(
            self.store,
            metrics=self.metrics,
            models={alias: m.limits for alias, m in config.models.items() if m.limits is not None},
            tenants={name: t.limits for name, t in config.tenants.items() if t.limits is not None},
            default_output_tokens=settings.default_output_tokens,
            on_store_error=settings.on_store_error,
        )
        self.budgets = BudgetPolicy(
            self.store,
            prices=PriceBook(config),
            metrics=self.metrics,
            tenants={name: t.budget for name, t in config.tenants.items() if t.budget is not None},
            default_output_tokens=settings.default_output_tokens,
            on_store_error=settings.on_store_error,
        )

    async def aclose(self) -> None:
        """Close the Redis client (after the gate has settled what was still in flight)."""
        if self._redis is not None:
            await self._redis.aclose()
