"""Retries of a step or a sink write: which errors are worth another attempt, and the attempt loop."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, TypeVar

from interlace.core.errors import InterlaceError, MessageRejected

if TYPE_CHECKING:
    import random
    from collections.abc import Awaitable, Callable

    from interlace.config._flow_parts import RetryPolicy

__all__ = ["RETRYABLE_STATUSES", "is_permanent", "with_retries"]

T = TypeVar("T")

RETRYABLE_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
"""Statuses of errors that another attempt later may cure (a quota's 429, an upstream's 503)."""


def is_permanent(error: BaseException) -> bool:
    """True for errors no retry cures: a rejected message, the caller's 4xx, an upstream's refusal."""
    if isinstance(error, MessageRejected):
        return True
    if isinstance(error, InterlaceError):
        if getattr(error, "retryable", True) is False:
            return True
        return error.status < 500 and error.status not in RETRYABLE_STATUSES  # noqa: PLR2004
    return False


async def with_retries(
    attempt: Callable[[], Awaitable[T]],
    policy: RetryPolicy,
    *,
    rng: random.Random,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    on_error: Callable[[BaseException], None] | None = None,
) -> T:
    """``attempt()`` up to ``policy.attempts`` times; a permanent error or the last one is raised."""
    for number in range(policy.attempts):
        try:
            return await attempt()
        except Exception as exc:
            if on_error is not None:
                on_error(exc)
            if is_permanent(exc) or number + 1 == policy.attempts:
                raise
            await sleep(policy.delay(number, rng))
    raise AssertionError("unreachable")  # pragma: no cover
