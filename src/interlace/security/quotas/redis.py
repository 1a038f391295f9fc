"""Quota buckets in Redis, shared by every gateway process: one Lua script per operation.

Reserving checks and takes every bucket of a request in one script (see :mod:`._lua` for the layout),
so two processes can never both take the last unit of a limit. When Redis fails (the client's socket
timeouts bound each read and connect; ``timeout``, when given, the whole operation), the operation
raises :class:`~.store.QuotaStoreError` (the policies then fail open or closed, as configured) and
Redis is not asked again for ``recheck`` seconds, so a dead Redis costs requests nothing more than a
failed check. The outage is logged once when it starts and
once when Redis answers again, never per request.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any

from interlace.security.quotas._lua import RESERVE, SETTLE, USED
from interlace.security.quotas.store import Denied, Granted, Level, QuotaStore, QuotaStoreError, Settled

if TYPE_CHECKING:
    from collections.abc import Sequence

    from redis.asyncio import Redis
    from redis.commands.core import AsyncScript

    from interlace.security.quotas.store import Bucket, Demand

__all__ = ["RedisQuotaStore"]

log = logging.getLogger("interlace.security.quotas")


class RedisQuotaStore(QuotaStore):
    """Buckets shared through Redis under ``{prefix}:quota:``."""

    def __init__(
        self,
        redis: Redis,
        *,
        prefix: str,
        timeout: float | None = None,
        recheck: float = 1.0,
        on_error: str = "open",
    ) -> None:
        self._prefix = f"{prefix}:quota:"
        self._reserve = redis.register_script(RESERVE)
        self._settle = redis.register_script(SETTLE)
        self._used = redis.register_script(USED)
        self._timeout = timeout
        self._recheck = recheck
        self._on_error = on_error
        self._retry_at = float("-inf")  # monotonic: while failing, Redis is not asked before this
        self.degraded = False
        """True from a failed operation until Redis answers again."""

    def keys(self, bucket: Bucket) -> list[str]:
        key = self._prefix + bucket.name
        return [key, f"{key}:log"]

    async def reserve(self, reservation: str, demands: Sequence[Demand], now_ms: int) -> Granted | Denied:
        keys: list[str] = []
        args: list[str | int] = [now_ms, reservation]
        for demand in demands:
            bucket = demand.bucket
            keys += self.keys(bucket)
            args += [bucket.limit, bucket.window_ms or 0, bucket.ends_ms or 0, demand.amount]
        reply = await self._run(self._reserve, keys, args)
        if int(reply[0]) == 0:
            return Denied(int(reply[1]), int(reply[2]), int(reply[3]))
        values = [int(value) for value in reply[1:]]
        return Granted(tuple(Level(*values[i : i + 3]) for i in range(0, len(values), 3)))

    async def settle(self, reservation: str, demands: Sequence[Demand], now_ms: int) -> tuple[Settled, ...]:
        keys: list[str] = []
        args: list[str | int] = [now_ms, reservation]
        for demand in demands:
            keys += self.keys(demand.bucket)
            args += [demand.bucket.window_ms or 0, demand.amount]
        values = [int(value) for value in await self._run(self._settle, keys, args)]
        return tuple(Settled(values[i], values[i + 1]) for i in range(0, len(values), 2))

    async def used(self, bucket: Bucket, now_ms: int) -> tuple[int, int]:
        reply = await self._run(self._used, self.keys(bucket), [now_ms, "", bucket.window_ms or 0])
        return int(reply[0]), int(reply[1])

    async def _run(self, script: AsyncScript, keys: list[str], args: list[str | int]) -> Any:
        from redis.exceptions import RedisError  # noqa: PLC0415 - redis is imported only when configured

        if time.monotonic() < self._retry_at:
            msg = "Redis failed moments ago; not asked again yet"
            raise QuotaStoreError(msg)
        try:
            if self._timeout is None:
                reply = await script(keys=keys, args=args)
            else:
                async with asyncio.timeout(self._timeout):
                    reply = await script(keys=keys, args=args)
        except (RedisError, OSError) as error:  # TimeoutError is an OSError
            self._failed(error)
            raise QuotaStoreError(str(error) or type(error).__name__) from error
        if self.degraded:
            self.degraded = False
            log.info("Quota state in Redis is reachable again; limits and budgets are enforced again.")
        return reply

    def _failed(self, error: Exception) -> None:
        self._retry_at = time.monotonic() + self._recheck
        if self.degraded:
            return
        self.degraded = True
        action = (
            "requests are let through unchecked"
            if self._on_error == "open"
            else "requests with limits are refused (503)"
        )
        log.warning(
            "Quota state in Redis is unavailable (%s: %s); %s until it answers (quotas.on_store_error: %s).",
            type(error).__name__,
            str(error) or f"no answer within {self._timeout}s",
            action,
            self._on_error,
        )
