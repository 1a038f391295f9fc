"""What the rate-limit and budget policies share: store failures, refunds, durations."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Final

from interlace.core.errors import QuotaStoreUnavailable

if TYPE_CHECKING:
    from interlace.config.quotas import StoreErrorPolicy
    from interlace.observability.record import RequestRecord
    from interlace.routing.context import RouteContext
    from interlace.security.quotas.metrics import QuotaMetrics

__all__ = ["OK", "duration", "refunded", "store_failed"]

log = logging.getLogger("interlace.security.quotas")

OK: Final = 200


def refunded(record: RequestRecord) -> bool:
    """A request that failed before producing output: it never reached a model, or no token came back."""
    return record.status != OK and record.usage.completion_tokens <= 0


def store_failed(policy: str, on_error: StoreErrorPolicy, metrics: QuotaMetrics, ctx: RouteContext) -> None:
    """The store did not answer: note it, and let the request through (``open``) or refuse it (503)."""
    metrics.store_errors.inc((on_error,))
    ctx.decisions.append(f"{policy}:store_unavailable:{on_error}")
    if on_error == "closed":
        raise QuotaStoreUnavailable(
            "Rate limits and budgets cannot be checked right now (their store is unavailable); "
            "try again shortly.",
            headers={"retry-after": "1"},
        )


def duration(ms: int) -> str:
    """Milliseconds as OpenAI writes its ``x-ratelimit-reset-*`` headers: ``20ms``, ``1.5s``, ``1m2s``."""
    ms = max(ms, 0)
    if ms < 1000:  # noqa: PLR2004
        return f"{ms}ms"
    minutes, rest = divmod(ms, 60_000)
    seconds = f"{rest / 1000:.3f}".rstrip("0").rstrip(".")
    return f"{minutes}m{seconds}s" if minutes else f"{seconds}s"
