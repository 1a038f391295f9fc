"""Two gateway processes, two Redis connections, one breaker: what one records, the other sees."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from typing import Protocol

import pytest
from redis.asyncio import Redis

from interlace.config.schema import BreakerConfig
from interlace.resilience.breaker import Breakers, BreakerState, Permit, Refusal
from interlace.resilience.breaker_store import RedisBreakerStore

KEY = "openai-east"
CONFIG = BreakerConfig(window=10, min_requests=4, failure_rate=0.5, open_for=5, half_open_probes=1)


class Clock(Protocol):
    def __call__(self) -> float: ...
    def advance(self, seconds: float) -> None: ...


@pytest.fixture
async def pair(
    redis_client: Redis, redis_prefix: str, redis_address: tuple[str, int], clock: Clock
) -> AsyncIterator[tuple[Breakers, Breakers]]:
    """Two processes' breakers: separate clients (so separate connections), one prefix, one clock."""
    other = Redis(host=redis_address[0], port=redis_address[1])
    stores = [RedisBreakerStore(client, prefix=redis_prefix, timeout=10) for client in (redis_client, other)]
    yield Breakers(stores[0], clock=clock), Breakers(stores[1], clock=clock)
    await other.aclose()
    assert not any(store.degraded for store in stores)


async def fail(breakers: Breakers, times: int = 1) -> None:
    for _ in range(times):
        permit = await breakers.allow(KEY, CONFIG)
        assert isinstance(permit, Permit)
        await breakers.record_failure(permit, CONFIG)


async def test_failures_recorded_by_one_open_the_breaker_for_the_other(
    pair: tuple[Breakers, Breakers],
) -> None:
    one, other = pair
    await fail(one, 2)
    await fail(other, 1)
    assert (await other.snapshot(KEY, CONFIG)).state is BreakerState.CLOSED
    await fail(one, 1)  # the fourth failure, from both processes together
    verdict = await other.allow(KEY, CONFIG)
    assert isinstance(verdict, Refusal)
    assert (verdict.state, verdict.reason) == (BreakerState.OPEN, "open")


async def test_only_one_process_gets_the_single_half_open_probe(
    pair: tuple[Breakers, Breakers], clock: Clock
) -> None:
    one = pair[0]
    await fail(one, 4)
    clock.advance(CONFIG.open_for)
    for _ in range(5):
        verdicts = await asyncio.gather(
            *(b.allow(KEY, CONFIG) for b in itertools.islice(itertools.cycle(pair), 60))
        )
        probes = [v for v in verdicts if isinstance(v, Permit)]
        assert len(probes) == 1
        assert probes[0].probe
        await one.release(probes[0])  # whichever process got it, the slot is freed for both


async def test_a_probe_success_in_one_process_closes_the_breaker_for_both(
    pair: tuple[Breakers, Breakers], clock: Clock
) -> None:
    one, other = pair
    await fail(one, 4)
    clock.advance(CONFIG.open_for)
    probe = await other.allow(KEY, CONFIG)
    assert isinstance(probe, Permit)
    assert probe.probe
    await other.record_success(probe, CONFIG)
    assert await one.allow(KEY, CONFIG) == Permit(KEY, probe=False, token=None)


async def test_concurrent_outcomes_from_both_processes_are_all_counted(
    pair: tuple[Breakers, Breakers],
) -> None:
    config = CONFIG.model_copy(update={"min_requests": 1000})
    permit = Permit(KEY, probe=False, token=None)
    await asyncio.gather(
        *(b.record_failure(permit, config) for b in itertools.islice(itertools.cycle(pair), 50)),
        *(b.record_success(permit, config) for b in itertools.islice(itertools.cycle(pair), 70)),
    )
    snapshot = await pair[1].snapshot(KEY, config)
    assert (snapshot.failures, snapshot.successes) == (50, 70)


async def test_a_cool_down_set_by_one_process_holds_for_the_other(
    pair: tuple[Breakers, Breakers], clock: Clock
) -> None:
    one, other = pair
    await one.cool_down(KEY, 3)
    verdict = await other.allow(KEY, CONFIG)
    assert isinstance(verdict, Refusal)
    assert (verdict.reason, verdict.until) == ("cooling_down", clock() + 3)
    assert (await other.snapshot(KEY, CONFIG)).failures == 0
