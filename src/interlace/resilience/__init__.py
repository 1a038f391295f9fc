"""Resilience: breakers, retries, deadlines, bulkheads."""

from interlace.resilience.breaker import (
    Breakers,
    BreakerSnapshot,
    BreakerState,
    Permit,
    Refusal,
    RefusalReason,
)
from interlace.resilience.breaker_store import BreakerStore, MemoryBreakerStore, RedisBreakerStore

__all__ = [
    "BreakerSnapshot",
    "BreakerState",
    "BreakerStore",
    "Breakers",
    "MemoryBreakerStore",
    "Permit",
    "RedisBreakerStore",
    "Refusal",
    "RefusalReason",
]
