"""What a failed attempt means for the request, and how long to wait before the next one.

Three pure pieces the router calls:

- :func:`classify` maps an error from one attempt to a :class:`Decision`. It answers for an attempt
  of which nothing reached the client yet; once a stream is committed, only the router's mid-stream
  recovery (or none) applies and classify is not consulted.
- :class:`RetrySchedule` is built per request from :class:`~interlace.config.schema.RetryConfig`, an
  injected :class:`random.Random` and the request's absolute deadline (``time.monotonic()`` scale).
  It counts attempts across the alias's deployments and computes exponential backoff with full
  jitter, never sooner than an upstream's Retry-After, never past the deadline.
- :func:`parse_deadline_header` reads the client's deadline header (``12``, ``1.5``, ``1500ms``).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from interlace.core.errors import (
    ContentPolicyViolation,
    ContextWindowExceeded,
    RequestError,
    ServiceUnavailable,
    StreamInterrupted,
    UpstreamError,
    UpstreamTimeout,
)

if TYPE_CHECKING:
    import random

    from interlace.config.schema import RetryConfig

__all__ = ["Decision", "RetrySchedule", "classify", "parse_deadline_header"]


class Decision(StrEnum):
    """What the router does after an attempt failed (before anything reached the client)."""

    #: Safe to try again, on the same or another deployment, after the schedule's backoff:
    #: connection refused/reset, connect timeout, 429, 5xx, malformed upstream body.
    RETRY = "retry"
    #: Do not try this deployment again for this request; go to the next candidate at once:
    #: it stayed silent past its first-byte/idle timeout or its total timeout, or it has no capacity.
    FAIL_OVER = "fail_over"
    #: The input does not fit the model's context window: never retried on the same model.
    CONTEXT_FALLBACK = "context_fallback"
    #: The provider refused on content policy: never retried.
    CONTENT_POLICY = "content_policy"
    #: The request itself is wrong (or the error is not an upstream's): answer the client now.
    STOP = "stop"


_RETRYABLE_TIMEOUT = "connect_timeout"  # nothing was sent yet: the deployment may well answer next time
_TIMEOUT_SUFFIX = "_timeout"
_MISCONFIGURED = "upstream_misconfigured"


def classify(error: BaseException) -> Decision:
    """The decision for one failed attempt. O(1): a few ``isinstance`` checks, no allocation."""
    if isinstance(error, UpstreamError):
        return _classify_upstream(error)
    if isinstance(error, ContextWindowExceeded):
        return Decision.CONTEXT_FALLBACK
    if isinstance(error, ContentPolicyViolation):
        return Decision.CONTENT_POLICY
    if isinstance(error, ServiceUnavailable):
        # a deployment that cannot take the request now (bulkhead full, local model loading)
        return Decision.FAIL_OVER
    return Decision.STOP


def _classify_upstream(error: UpstreamError) -> Decision:
    if isinstance(error, UpstreamTimeout):
        # first byte / total (or any later-added) timeout: the deployment was slow, not unreachable
        return Decision.RETRY if error.code == _RETRYABLE_TIMEOUT else Decision.FAIL_OVER
    if isinstance(error, StreamInterrupted):
        # Before the stream is committed: a silent deployment (idle/total) is not retried, a broken
        # or truncated stream is like a reset connection. (``retryable`` is False because, once
        # committed, nothing may be retried; that case never reaches classify.)
        return Decision.FAIL_OVER if error.code.endswith(_TIMEOUT_SUFFIX) else Decision.RETRY
    if error.code == _MISCONFIGURED:
        # credentials or URL rejected (401/403/404): another deployment may be fine, this one won't be
        return Decision.FAIL_OVER
    return Decision.RETRY if error.retryable else Decision.STOP


_MAX_EXPONENT = 64  # 2**64 * any sane base_delay is far past any max_delay; avoids float overflow


@dataclass(slots=True)
class RetrySchedule:
    """Attempts and backoff of one request across its alias's deployments.

    ``deadline`` is absolute, on the ``time.monotonic()`` scale the router passes as ``now``.
    The router calls :meth:`record_attempt` once per attempt made, on whichever deployment (so
    ``attempts_left`` spans fail-overs too) and, before a retry, :meth:`delay_before` to learn how
    long to wait — ``None`` means give up on retries (go to the fallback, or answer the last error).
    """

    max_attempts: int
    base_delay: float
    max_delay: float
    max_retry_after: float
    deadline: float
    rng: random.Random
    attempts: int = 0

    @classmethod
    def from_config(cls, config: RetryConfig, *, deadline: float, rng: random.Random) -> RetrySchedule:
        """A fresh schedule for one request."""
        return cls(
            max_attempts=config.max_attempts,
            base_delay=config.base_delay,
            max_delay=config.max_delay,
            max_retry_after=config.max_retry_after,
            deadline=deadline,
            rng=rng,
        )

    @property
    def attempts_left(self) -> int:
        """Attempts the budget still allows (on any deployment)."""
        return max(0, self.max_attempts - self.attempts)

    def record_attempt(self) -> int:
        """Count one attempt (made or about to be made); returns its 1-based number."""
        self.attempts += 1
        return self.attempts

    def time_left(self, now: float) -> float:
        """Seconds until the request's deadline (negative once it passed)."""
        return self.deadline - now

    def can_attempt(self, now: float) -> bool:
        """Whether another attempt (e.g. a fail-over, which does not wait) is allowed now."""
        return self.attempts < self.max_attempts and now < self.deadline

    def delay_before(self, retry_number: int, *, retry_after: float | None, now: float) -> float | None:
        """Seconds to wait before the ``retry_number``-th retry (1-based), or ``None`` to give up.

        Full jitter: ``uniform(0, min(max_delay, base_delay * 2 ** (retry_number - 1)))``, raised to
        ``retry_after`` when given (never sooner than the upstream asked). ``None`` when the budget is
        spent (``retry_number`` or the recorded attempts reached ``max_attempts``), when
        ``retry_after`` exceeds ``max_retry_after``, or when ``now + delay`` would reach the deadline.
        Pass ``retry_after`` only when the retry goes to the deployment that asked for it.
        """
        if retry_number < 1:
            raise ValueError(f"retry_number is 1-based, got {retry_number}")
        if retry_number >= self.max_attempts or self.attempts >= self.max_attempts:
            return None
        cap = min(self.max_delay, self.base_delay * 2.0 ** min(retry_number - 1, _MAX_EXPONENT))
        delay = self.rng.uniform(0.0, cap)
        if retry_after is not None:
            if retry_after > self.max_retry_after:
                return None
            delay = max(delay, retry_after)
        if now + delay >= self.deadline:
            return None
        return delay


_DEADLINE = re.compile(r"(?P<number>\d{1,12}(?:\.\d{0,9})?|\.\d{1,9})\s*(?P<unit>ms|s)?", re.IGNORECASE)


def parse_deadline_header(
    value: str | None, *, default: float, maximum: float, header: str = "x-interlace-timeout"
) -> float:
    """The request's total deadline in seconds, from the client's header value.

    Absent (``None``) gives ``default``. Accepted forms: seconds (``12``, ``1.5``, ``12s``) or
    milliseconds (``1500ms``). Values above ``maximum`` are clamped to it; anything else (empty,
    negative, zero, not a number) is a :class:`RequestError` naming the header.
    """
    if value is None:
        return min(default, maximum)
    match = _DEADLINE.fullmatch(value.strip())
    seconds = 0.0
    if match is not None:
        seconds = float(match["number"])
        if (match["unit"] or "s").lower() == "ms":
            seconds /= 1000
    if not (seconds > 0 and math.isfinite(seconds)):
        raise RequestError(
            f"Invalid {header} header {value[:40]!r}: expected a positive number of seconds "
            f"('12', '1.5', '12s') or milliseconds ('1500ms'), at most {maximum:g}s.",
            param=header,
        )
    return min(seconds, maximum)
