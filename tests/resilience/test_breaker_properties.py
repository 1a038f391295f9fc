"""Random operation sequences on a fake clock: the breaker's invariants hold, and Redis matches memory.

The machine drives one key through allow / success / failure / release / cool-down / clock steps.
With Redis it drives the memory and the Redis store side by side and requires identical answers:
the Lua scripts and :class:`~interlace.resilience.breaker.Circuit` are one state machine.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    initialize,
    invariant,
    multiple,
    rule,
    run_state_machine_as_test,
)
from redis.asyncio import Redis

from interlace.config.schema import BreakerConfig
from interlace.resilience.breaker import (
    BUCKETS,
    Breakers,
    BreakerSnapshot,
    BreakerState,
    Permit,
    bucket_width,
)
from interlace.resilience.breaker_store import BreakerStore, MemoryBreakerStore, RedisBreakerStore

KEY = "deployment"


class Clock(Protocol):
    def __call__(self) -> float: ...
    def advance(self, seconds: float) -> None: ...


configs = st.builds(
    BreakerConfig,
    enabled=st.sampled_from([True, True, True, False]),
    window=st.sampled_from([1.0, 2.0, 5.0]),
    min_requests=st.integers(1, 5),
    failure_rate=st.sampled_from([0.2, 0.5, 0.75, 1.0]),
    open_for=st.sampled_from([0.5, 1.0, 3.0]),
    half_open_probes=st.integers(1, 3),
)


@dataclass(eq=False)
class Held:
    """One permit per store, granted at ``at`` (ms)."""

    permits: list[Permit]
    at: int

    @property
    def probe(self) -> bool:
        return self.permits[0].probe


def shape(verdict: object) -> tuple[Any, ...]:
    """What must agree between stores (tokens are random)."""
    if isinstance(verdict, Permit):
        return ("permit", verdict.probe)
    return ("refusal", verdict)


class BreakerMachine(RuleBasedStateMachine):
    held = Bundle("held")

    def __init__(self, clock: Clock, redis_address: tuple[str, int] | None = None) -> None:
        super().__init__()
        self.runner = asyncio.Runner()
        self.clock = clock
        self.config = BreakerConfig()
        self.redis: Redis | None = None
        self.prefix = f"test-{uuid.uuid4().hex[:12]}"
        stores: list[BreakerStore] = [MemoryBreakerStore()]
        if redis_address is not None:
            self.redis = self.runner.run(self._connect(redis_address))
            stores.append(RedisBreakerStore(self.redis, prefix=self.prefix, timeout=10))  # no fallback
        self.breakers = [Breakers(store, clock=clock) for store in stores]
        self.outstanding: set[Held] = set()  # probe permits neither reported nor released
        self.counted: list[int] = []  # times of outcomes recorded while closed, since the last close

    @staticmethod
    async def _connect(address: tuple[str, int]) -> Redis:
        return Redis(host=address[0], port=address[1])

    def teardown(self) -> None:
        if self.redis is not None:
            self.runner.run(self._cleanup(self.redis))
        self.runner.close()

    async def _cleanup(self, client: Redis) -> None:
        keys = [key async for key in client.scan_iter(match=f"{self.prefix}:*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()

    @property
    def now(self) -> int:
        return round(self.clock() * 1000)

    def each(self, call: Callable[[Breakers, int], Any]) -> list[Any]:
        """``call(breakers, i)`` on every store's breakers in turn; their answers must agree."""

        async def run() -> list[Any]:
            return [await call(b, i) for i, b in enumerate(self.breakers)]

        results = self.runner.run(run())
        assert all(r == results[0] for r in results[1:]) or all(
            shape(r) == shape(results[0]) for r in results[1:]
        ), results
        return results

    def snapshot(self) -> BreakerSnapshot:
        snapshot: BreakerSnapshot = self.each(lambda b, _: b.snapshot(KEY, self.config))[0]
        return snapshot

    @initialize(config=configs)
    def configure(self, config: BreakerConfig) -> None:
        self.config = config

    @rule(ms=st.one_of(st.integers(0, 30), st.integers(0, 6000)))
    def tick(self, ms: int) -> None:
        self.clock.advance(ms / 1000)

    @rule(to=st.sampled_from(["open_for", "bucket", "window"]), offset=st.sampled_from([-1, 0, 1]))
    def tick_to_a_boundary(self, to: str, offset: int) -> None:
        span = {
            "open_for": round(self.config.open_for * 1000),
            "bucket": bucket_width(self.config),
            "window": round(self.config.window * 1000),
        }[to]
        self.clock.advance(max(0, span + offset) / 1000)

    @rule(target=held)
    def allow(self) -> Any:
        before = self.snapshot()
        verdicts = self.each(lambda b, _: b.allow(KEY, self.config))
        if not isinstance(verdicts[0], Permit):
            return multiple()
        granted = Held(verdicts, self.now)
        assert before.state is not BreakerState.OPEN, f"an open breaker allowed a request: {before}"
        if granted.probe:
            assert self.config.enabled
            assert before.opened_at is not None
            assert self.now >= round((before.opened_at + self.config.open_for) * 1000)
            self.outstanding.add(granted)
            live = [h for h in self.outstanding if h.at + round(self.config.open_for * 1000) > self.now]
            assert len(live) <= self.config.half_open_probes, live
        return granted

    def _report(self, held: Held, *, success: bool) -> None:
        self.outstanding.discard(held)
        before = self.snapshot()
        self.each(
            lambda b, i: (b.record_success if success else b.record_failure)(held.permits[i], self.config)
        )
        after = self.snapshot()
        if before.state is BreakerState.CLOSED and self.config.enabled:
            self.counted.append(self.now)
            if after.state is BreakerState.OPEN:
                in_reach = [t for t in self.counted if self.now - t < BUCKETS * bucket_width(self.config)]
                assert len(in_reach) >= self.config.min_requests, (in_reach, after)
                assert after.opened_at is not None
                assert round(after.opened_at * 1000) == self.now
        if after.state is BreakerState.CLOSED and before.state is not BreakerState.CLOSED:
            assert held.probe
            assert success
            self.counted.clear()

    @rule(held=consumes(held))
    def succeed(self, held: Held) -> None:
        self._report(held, success=True)

    @rule(held=consumes(held))
    def fail(self, held: Held) -> None:
        self._report(held, success=False)

    @rule(held=consumes(held))
    def release(self, held: Held) -> None:
        self.outstanding.discard(held)
        before = self.snapshot()
        self.each(lambda b, i: b.release(held.permits[i]))
        after = self.snapshot()
        assert (after.state, after.failures, after.successes) == (
            before.state,
            before.failures,
            before.successes,
        )

    @rule(seconds=st.sampled_from([0.001, 0.5, 1.0, 2.5]))
    def cool_down(self, seconds: float) -> None:
        before = self.snapshot()
        self.each(lambda b, _: b.cool_down(KEY, seconds))
        after = self.snapshot()
        assert after.cooling_until is not None
        assert after.cooling_until >= self.clock() + seconds
        assert (after.state, after.failures, after.successes, after.opened_at) == (
            before.state,
            before.failures,
            before.successes,
            before.opened_at,
        )

    @invariant()
    def consistent(self) -> None:
        snapshot = self.snapshot()
        assert snapshot.state in set(BreakerState)
        if snapshot.state is BreakerState.CLOSED:
            assert snapshot.opened_at is None
        else:
            assert snapshot.opened_at is not None
            reopens = round((snapshot.opened_at + self.config.open_for) * 1000)
            assert (snapshot.state is BreakerState.OPEN) == (self.now < reopens)
        if snapshot.state is BreakerState.CLOSED:
            width = bucket_width(self.config)
            surely = [t for t in self.counted if self.now - t <= (BUCKETS - 1) * width]
            maybe = [t for t in self.counted if self.now - t < BUCKETS * width]
            assert len(surely) <= snapshot.failures + snapshot.successes <= len(maybe), snapshot


def test_breaker_invariants_in_memory(clock_factory: Callable[[], Clock]) -> None:
    run_state_machine_as_test(
        lambda: BreakerMachine(clock_factory()),
        settings=settings(max_examples=80, stateful_step_count=40, deadline=None),
    )


def test_redis_store_answers_exactly_as_memory(
    clock_factory: Callable[[], Clock], redis_address: tuple[str, int]
) -> None:
    run_state_machine_as_test(
        lambda: BreakerMachine(clock_factory(), redis_address),
        settings=settings(
            max_examples=25,
            stateful_step_count=30,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
