"""The quota store port: buckets reserved all at once, then settled with what was really used.

A :class:`Bucket` is one limit: a **sliding window** (``window_ms``: requests or tokens per minute) or a
**period counter** (``window_ms is None``: spend per day, month or ever, in nano-dollars). A request
*reserves* an amount in every bucket that applies to it in one atomic step — all of them or none — and
later *settles* each reservation with the amount it really used (0 refunds it).

Sliding windows are exact logs, not approximations: each reservation is kept with its time and amount
and leaves the window ``window_ms`` after it was made, so at any instant the amounts reserved in the
last ``window_ms`` never exceed the limit (a request that would exceed it is refused). A counter keeps
the spend settled in its period (``settled``) and its running total with the reservations still open
(``used``); a request is admitted only while ``used + amount <= limit``, so concurrent requests can
overspend the limit by at most what one settlement exceeds its reservation.

Two implementations share this contract (and one test suite): :class:`~.memory.MemoryQuotaStore`
(one process) and :class:`~.redis.RedisQuotaStore` (every gateway sharing a Redis, one Lua script per
operation). Times are integer milliseconds of the caller's wall clock.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from collections.abc import Sequence
    from datetime import date

__all__ = [
    "Bucket",
    "Demand",
    "Denied",
    "Granted",
    "Level",
    "QuotaStore",
    "QuotaStoreError",
    "Settled",
    "SpendQuery",
]


@dataclass(frozen=True, slots=True)
class SpendQuery:
    """Whose spend a budget counter holds, so a store without memory can seed it from the usage log."""

    scope: Literal["key", "tenant"]
    id: str
    since: date | None
    """The first UTC day of the period; None for a budget over all time."""


@dataclass(frozen=True, slots=True)
class Bucket:
    """One limit. ``name`` identifies its state in the store (scope, id, what it counts, period)."""

    name: str
    limit: int
    window_ms: int | None = None
    """Length of the sliding window; None for a period counter."""
    ends_ms: int | None = None
    """A counter's period end (when its state may be dropped); None for a counter that never ends."""
    seed: SpendQuery | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class Demand:
    bucket: Bucket
    amount: int


@dataclass(frozen=True, slots=True)
class Level:
    """A bucket right after a reservation was granted."""

    used: int
    """Amount counted now, this reservation included."""
    reset_ms: int
    """Milliseconds until some of it is given back (the oldest reservation leaves the window, or the
    period ends); -1 when never."""
    settled: int = 0
    """A counter's settled spend (its open reservations left out); 0 for a window."""


@dataclass(frozen=True, slots=True)
class Granted:
    levels: tuple[Level, ...]
    """One per demand, in order."""


@dataclass(frozen=True, slots=True)
class Denied:
    index: int
    """The first demand that did not fit (0-based)."""
    used: int
    """What its bucket counted."""
    retry_after_ms: int
    """Milliseconds until every refused demand fits, if nothing else is reserved meanwhile; -1 when
    waiting cannot help (the amount is larger than the limit, or a counter never ends)."""


@dataclass(frozen=True, slots=True)
class Settled:
    """A counter's settled spend before and after a settlement (windows: both 0); -1 when the
    reservation was not found (already settled, or expired with its window)."""

    before: int
    after: int


class QuotaStoreError(Exception):
    """The store could not be reached or did not answer in time; the policies decide what follows."""


class QuotaStore(ABC):
    """Where buckets live. Each method is atomic across every process sharing the store."""

    @abstractmethod
    async def reserve(self, reservation: str, demands: Sequence[Demand], now_ms: int) -> Granted | Denied:
        """Reserve every demand under the id ``reservation``, or none of them."""

    @abstractmethod
    async def settle(self, reservation: str, demands: Sequence[Demand], now_ms: int) -> tuple[Settled, ...]:
        """Replace each reservation's amount with ``demand.amount`` (0: refund it); idempotent."""

    def settle_at_once(
        self,
        reservation: str,  # noqa: ARG002 - a default hook
        demands: Sequence[Demand],  # noqa: ARG002
        now_ms: int,  # noqa: ARG002
    ) -> tuple[Settled, ...] | None:
        """:meth:`settle` without waiting, when this store can; None when it must be awaited."""
        return None

    @abstractmethod
    async def used(self, bucket: Bucket, now_ms: int) -> tuple[int, int]:
        """``(used, settled)`` of a bucket now (a window's ``settled`` is 0)."""
