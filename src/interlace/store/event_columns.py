"""The event log's column facts that its writers need without SQLAlchemy's table definitions."""

from __future__ import annotations

__all__ = ["EVENT_ID_LENGTH", "USAGE_KEYS", "USAGE_METRICS"]

EVENT_ID_LENGTH = 160
"""Room for a record's own id (32 hex digits) and for the ids events logged before had (a request id
of up to 128 characters, plus ``:shadow``)."""

USAGE_KEYS = ("day", "tenant", "api_key_id", "model")
"""The read model's primary key."""

USAGE_METRICS = (
    "requests",
    "errors",
    "partial",
    "estimated",
    "prompt_tokens",
    "completion_tokens",
    "cached_tokens",
    "reasoning_tokens",
    "cost_nanos",
    "shadow_requests",
    "shadow_cost_nanos",
)
"""The read model's additive columns."""
