"""Budget periods in UTC: the current day, the current calendar month, or all time."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from interlace.config.quotas import BudgetPeriod

__all__ = ["Period", "current_period"]


@dataclass(frozen=True, slots=True)
class Period:
    id: str
    """Part of the counter's name: ``d2026-11-27``, ``m2026-11`` or ``all``."""
    since: date | None
    """The first day it counts (None: all time)."""
    ends_ms: int | None
    """When it ends, wall-clock milliseconds (None: never)."""


def current_period(period: BudgetPeriod, now: float) -> Period:
    """The period of kind ``period`` that contains ``now`` (seconds since the epoch)."""
    today = datetime.fromtimestamp(now, UTC).date()
    if period == "day":
        return Period(f"d{today.isoformat()}", today, _millis(today + timedelta(days=1)))
    if period == "month":
        first = today.replace(day=1)
        following = date(first.year + first.month // 12, first.month % 12 + 1, 1)
        return Period(f"m{first.isoformat()[:7]}", first, _millis(following))
    return Period("all", None, None)


def _millis(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp() * 1000)
