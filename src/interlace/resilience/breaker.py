"""Per-deployment circuit breakers: a failure-rate window, open, half-open probes and cool-downs.

One :class:`Breakers` serves every deployment of a runtime; its state lives in a
:class:`~interlace.resilience.breaker_store.BreakerStore` (in process, or shared through Redis).

- CLOSED: every request is allowed. Outcomes are counted in ``BUCKETS`` buckets of ``window / BUCKETS``
  seconds, so an outcome counts for at least ``window - window / BUCKETS`` and at most ``window``
  seconds. When the window holds ``min_requests`` outcomes or more and ``failures / total`` reaches
  ``failure_rate``, the breaker opens.
- OPEN: requests are refused until ``opened_at + open_for``; then the breaker is HALF_OPEN.
- HALF_OPEN: at most ``half_open_probes`` probe permits are out at once. A probe success closes the
  breaker with a clean window, a probe failure opens it again. A released probe frees its slot; a
  probe never reported expires ``open_for`` after it was granted. Outcomes of ordinary permits
  granted before the breaker opened are ignored while it is open or half-open.
- Cool-down (a 429 with Retry-After) refuses every request until it ends, breaker or not, and counts
  no failure.

:class:`Circuit` is the state machine for one key, with times in integer milliseconds of the
injected wall clock. The Redis store runs the same transitions as Lua scripts; both stores are held
to one contract by the tests.
"""

from __future__ import annotations

import math
import secrets
import time
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Final, Literal

if TYPE_CHECKING:
    from collections.abc import Callable

    from interlace.config.schema import BreakerConfig
    from interlace.resilience.breaker_store import BreakerStore

__all__ = [
    "BUCKETS",
    "BreakerSnapshot",
    "BreakerState",
    "Breakers",
    "Circuit",
    "Permit",
    "Refusal",
    "RefusalReason",
    "bucket_width",
    "millis",
]

#: Buckets of the sliding window (each ``window / BUCKETS`` wide).
BUCKETS: Final = 10


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


#: Why a request was refused: the breaker is open, the deployment cools down after a 429, or every
#: half-open probe slot is taken.
RefusalReason = Literal["open", "cooling_down", "probing"]


@dataclass(frozen=True, slots=True)
class Permit:
    """Leave to call the deployment; report it with exactly one of record_success/failure or release."""

    key: str
    probe: bool
    token: str | None  # identifies a half-open probe slot; None for an ordinary permit


@dataclass(frozen=True, slots=True)
class Refusal:
    """The deployment must not be called now; ``until`` is the wall time it may be asked again.

    For ``probing`` it is the time the oldest probe slot expires at the latest; a slot usually frees
    sooner, when its probe reports.
    """

    key: str
    state: BreakerState
    until: float
    reason: RefusalReason


@dataclass(frozen=True, slots=True)
class BreakerSnapshot:
    key: str
    state: BreakerState
    failures: int  # in the window
    successes: int  # in the window
    failure_rate: float  # 0.0 on an empty window
    opened_at: float | None  # wall time of the last opening, while open or half-open
    cooling_until: float | None  # while a cool-down lasts


def millis(seconds: float) -> int:
    """Seconds as integer milliseconds: the one rounding both stores use."""
    return round(seconds * 1000)


def bucket_width(config: BreakerConfig) -> int:
    """Milliseconds per window bucket."""
    return max(1, -(-millis(config.window) // BUCKETS))


class Circuit:
    """One key's breaker in memory; the reference the Redis scripts mirror. Times in ms."""

    __slots__ = (
        "_config",
        "_cooling_until",
        "_fails",
        "_failures",
        "_head",
        "_oks",
        "_open",
        "_opened_at",
        "_permit",
        "_probes",
        "_successes",
        "_width",
        "key",
    )

    def __init__(self, key: str) -> None:
        self.key = key
        self._permit = Permit(key, probe=False, token=None)  # the ordinary permit, shared
        self._open = False  # OPEN or HALF_OPEN: which one is a matter of the clock
        self._opened_at = 0
        self._cooling_until = 0
        self._head = 0  # epoch (now // bucket width) of the newest bucket
        self._fails = [0] * BUCKETS
        self._oks = [0] * BUCKETS
        self._failures = 0  # totals over the buckets
        self._successes = 0
        self._probes: dict[str, int] = {}  # token -> expiry
        self._config: BreakerConfig | None = None  # the config _width was computed for (frozen)
        self._width = 1

    def state(self, now: int, config: BreakerConfig) -> BreakerState:
        if not self._open:
            return BreakerState.CLOSED
        if now < self._opened_at + millis(config.open_for):
            return BreakerState.OPEN
        return BreakerState.HALF_OPEN

    def allow(self, now: int, config: BreakerConfig) -> Permit | Refusal:
        if self._cooling_until > now:
            state, until = self.state(now, config), self._cooling_until
            if state is BreakerState.OPEN and config.enabled:  # whichever ends later
                until = max(until, self._opened_at + millis(config.open_for))
            return Refusal(self.key, state, until / 1000, "cooling_down")
        if not self._open or not config.enabled:
            return self._permit
        reopens = self._opened_at + millis(config.open_for)
        if now < reopens:
            return Refusal(self.key, BreakerState.OPEN, reopens / 1000, "open")
        probes = self._probes
        for token in [t for t, expires in probes.items() if expires <= now]:
            del probes[token]
        if len(probes) < config.half_open_probes:
            token = secrets.token_hex(8)
            probes[token] = now + millis(config.open_for)
            return Permit(self.key, probe=True, token=token)
        return Refusal(self.key, BreakerState.HALF_OPEN, min(probes.values()) / 1000, "probing")

    def record(self, permit: Permit, now: int, config: BreakerConfig, *, success: bool) -> None:
        if permit.probe and permit.token is not None:
            expires = self._probes.pop(permit.token, None)
            if expires is not None and expires > now:
                if success:
                    self._close()
                else:
                    self._trip(now)
                return
            # a probe that lost its slot (expired, or another probe decided) counts like any permit
        if not self._open:
            self._count(now, config, success=success)

    def release(self, permit: Permit) -> None:
        if permit.token is not None:
            self._probes.pop(permit.token, None)

    def cool_down(self, until: int) -> None:
        self._cooling_until = max(self._cooling_until, until)

    def snapshot(self, now: int, config: BreakerConfig) -> BreakerSnapshot:
        failures, successes = self._in_window(now // bucket_width(config))
        total = failures + successes
        return BreakerSnapshot(
            key=self.key,
            state=self.state(now, config),
            failures=failures,
            successes=successes,
            failure_rate=failures / total if total else 0.0,
            opened_at=self._opened_at / 1000 if self._open else None,
            cooling_until=self._cooling_until / 1000 if self._cooling_until > now else None,
        )

    def holds(self, permit: Permit) -> bool:
        """Whether ``permit`` is a probe this circuit granted and still counts."""
        return permit.token is not None and permit.token in self._probes

    def _count(self, now: int, config: BreakerConfig, *, success: bool) -> None:
        if config is not self._config:
            self._config, self._width = config, bucket_width(config)
        slot = self._advance(now // self._width) % BUCKETS
        if success:
            self._oks[slot] += 1
            self._successes += 1
        else:
            self._fails[slot] += 1
            self._failures += 1
        total = self._failures + self._successes
        if total >= config.min_requests and self._failures / total >= config.failure_rate:
            self._trip(now)

    def _in_window(self, epoch: int) -> tuple[int, int]:
        """(failures, successes) the window would hold at ``epoch``, without moving it."""
        head = self._head
        if epoch <= head:
            return (self._failures, self._successes) if epoch > head - BUCKETS else (0, 0)
        if epoch - head >= BUCKETS:
            return 0, 0
        failures, successes = self._failures, self._successes
        for stale in range(head + 1, epoch + 1):
            failures -= self._fails[stale % BUCKETS]
            successes -= self._oks[stale % BUCKETS]
        return failures, successes

    def _advance(self, epoch: int) -> int:
        """Move the window to ``epoch``, dropping buckets that fell out; the epoch to count in."""
        head = self._head
        if epoch <= head:
            if epoch > head - BUCKETS:
                return head  # the current bucket, or a clock that stepped back a little
            self._clear()  # far back (clock jump, or a changed window): start over
        elif epoch - head >= BUCKETS:
            self._clear()
        else:
            fails, oks = self._fails, self._oks
            for stale in range(head + 1, epoch + 1):
                slot = stale % BUCKETS
                self._failures -= fails[slot]
                self._successes -= oks[slot]
                fails[slot] = oks[slot] = 0
        self._head = epoch
        return epoch

    def _clear(self) -> None:
        self._fails = [0] * BUCKETS
        self._oks = [0] * BUCKETS
        self._failures = self._successes = self._head = 0

    def _trip(self, now: int) -> None:
        self._open = True
        self._opened_at = now
        self._probes.clear()

    def _close(self) -> None:
        self._open = False
        self._opened_at = 0
        self._probes.clear()
        self._clear()


class Breakers:
    """The circuit breakers of every deployment of one runtime, keyed by deployment name."""

    __slots__ = ("_clock", "_store")

    def __init__(self, store: BreakerStore, *, clock: Callable[[], float] = time.time) -> None:
        self._store = store
        self._clock = clock

    @property
    def store(self) -> BreakerStore:
        return self._store

    async def allow(self, key: str, config: BreakerConfig) -> Permit | Refusal:
        """A permit to call ``key`` now, or why not and until when."""
        return await self._store.allow(key, config, self._clock())

    async def record_success(self, permit: Permit, config: BreakerConfig) -> None:
        if config.enabled or permit.probe:
            await self._store.record(permit, config, self._clock(), success=True)

    async def record_failure(self, permit: Permit, config: BreakerConfig) -> None:
        if config.enabled or permit.probe:
            await self._store.record(permit, config, self._clock(), success=False)

    async def release(self, permit: Permit) -> None:
        """Give the permit back without an outcome (cancelled, client gone, never sent)."""
        if permit.probe:
            await self._store.release(permit, self._clock())

    async def cool_down(self, key: str, seconds: float) -> None:
        """Refuse ``key`` for ``seconds`` (a 429's Retry-After) without counting a failure."""
        if 0 < seconds < math.inf:
            now = self._clock()
            await self._store.cool_down(key, now + seconds, now)

    async def snapshot(self, key: str, config: BreakerConfig) -> BreakerSnapshot:
        return await self._store.snapshot(key, config, self._clock())
