"""The breaker's transitions, once, against both stores (memory and Redis); then Redis-only concerns."""

from __future__ import annotations

import asyncio
import logging
import socket
from typing import Protocol

import pytest
from redis.asyncio import Redis

from interlace.config.schema import BreakerConfig
from interlace.resilience.breaker import BUCKETS, Breakers, BreakerState, Permit, Refusal
from interlace.resilience.breaker_store import RedisBreakerStore

KEY = "openai-east"
CONFIG = BreakerConfig(window=10, min_requests=4, failure_rate=0.5, open_for=5, half_open_probes=1)


class Clock(Protocol):
    def __call__(self) -> float: ...
    def advance(self, seconds: float) -> None: ...


async def permit(breakers: Breakers, config: BreakerConfig = CONFIG, key: str = KEY) -> Permit:
    verdict = await breakers.allow(key, config)
    assert isinstance(verdict, Permit), verdict
    return verdict


async def refusal(breakers: Breakers, config: BreakerConfig = CONFIG, key: str = KEY) -> Refusal:
    verdict = await breakers.allow(key, config)
    assert isinstance(verdict, Refusal), verdict
    return verdict


async def outcomes(
    breakers: Breakers, *, failures: int = 0, successes: int = 0, config: BreakerConfig = CONFIG
) -> None:
    for _ in range(successes):
        await breakers.record_success(await permit(breakers, config), config)
    for _ in range(failures):
        await breakers.record_failure(await permit(breakers, config), config)


async def state(breakers: Breakers, config: BreakerConfig = CONFIG) -> BreakerState:
    return (await breakers.snapshot(KEY, config)).state


async def half_open(breakers: Breakers, clock: Clock, config: BreakerConfig = CONFIG) -> None:
    await outcomes(breakers, failures=config.min_requests, config=config)
    clock.advance(config.open_for)
    assert await state(breakers, config) is BreakerState.HALF_OPEN


# --- the contract: every test here runs against the memory and the Redis store ---------------------


async def test_an_unknown_key_is_closed_and_allowed(breakers: Breakers) -> None:
    assert await permit(breakers) == Permit(KEY, probe=False, token=None)
    snapshot = await breakers.snapshot(KEY, CONFIG)
    assert (snapshot.state, snapshot.failures, snapshot.successes) == (BreakerState.CLOSED, 0, 0)
    assert (snapshot.failure_rate, snapshot.opened_at, snapshot.cooling_until) == (0.0, None, None)


async def test_opens_at_the_failure_rate_only_once_min_requests_are_in(
    breakers: Breakers, clock: Clock
) -> None:
    await outcomes(breakers, failures=3)  # 100% failures, but 3 < min_requests
    assert await state(breakers) is BreakerState.CLOSED
    await outcomes(breakers, failures=1)
    snapshot = await breakers.snapshot(KEY, CONFIG)
    assert (snapshot.state, snapshot.failures, snapshot.opened_at) == (BreakerState.OPEN, 4, clock())


async def test_opens_at_the_rate_not_below_it(breakers: Breakers) -> None:
    await outcomes(breakers, successes=3, failures=2)  # 40%
    assert await state(breakers) is BreakerState.CLOSED
    await outcomes(breakers, failures=1)  # 3 of 6: exactly the rate
    snapshot = await breakers.snapshot(KEY, CONFIG)
    assert (snapshot.state, snapshot.failure_rate) == (BreakerState.OPEN, 0.5)


async def test_open_refuses_until_open_for_has_passed(breakers: Breakers, clock: Clock) -> None:
    await outcomes(breakers, failures=4)
    opened = clock()
    assert await refusal(breakers) == Refusal(KEY, BreakerState.OPEN, opened + 5, "open")
    clock.advance(4.999)
    assert (await refusal(breakers)).reason == "open"
    clock.advance(0.001)
    assert (await permit(breakers)).probe


async def test_half_open_allows_exactly_half_open_probes_at_once(breakers: Breakers, clock: Clock) -> None:
    config = CONFIG.model_copy(update={"half_open_probes": 3})
    await half_open(breakers, clock, config)
    verdicts = await asyncio.gather(*(breakers.allow(KEY, config) for _ in range(12)))
    probes = [v for v in verdicts if isinstance(v, Permit)]
    assert len(probes) == 3
    assert all(p.probe for p in probes)
    assert len({p.token for p in probes}) == 3
    refused = [v for v in verdicts if isinstance(v, Refusal)]
    assert {(r.state, r.reason, r.until) for r in refused} == {
        (BreakerState.HALF_OPEN, "probing", clock() + 5)
    }


async def test_a_probe_success_closes_with_a_clean_window(breakers: Breakers, clock: Clock) -> None:
    await half_open(breakers, clock)
    await breakers.record_success(await permit(breakers), CONFIG)
    snapshot = await breakers.snapshot(KEY, CONFIG)
    assert (snapshot.state, snapshot.failures, snapshot.successes, snapshot.opened_at) == (
        BreakerState.CLOSED,
        0,
        0,
        None,
    )
    await outcomes(breakers, failures=3)  # with the old failures still counted, this would open
    assert await state(breakers) is BreakerState.CLOSED


async def test_a_probe_failure_opens_again(breakers: Breakers, clock: Clock) -> None:
    await half_open(breakers, clock)
    probe = await permit(breakers)
    clock.advance(0.25)
    await breakers.record_failure(probe, CONFIG)
    assert await refusal(breakers) == Refusal(KEY, BreakerState.OPEN, clock() + 5, "open")
    assert (await breakers.snapshot(KEY, CONFIG)).opened_at == clock()


async def test_a_released_probe_frees_its_slot_and_decides_nothing(breakers: Breakers, clock: Clock) -> None:
    await half_open(breakers, clock)
    probe = await permit(breakers)
    assert (await refusal(breakers)).reason == "probing"
    await breakers.release(probe)
    assert await state(breakers) is BreakerState.HALF_OPEN
    assert (await permit(breakers)).probe


async def test_a_probe_never_reported_expires_after_open_for(breakers: Breakers, clock: Clock) -> None:
    await half_open(breakers, clock)
    lost = await permit(breakers)
    clock.advance(4.999)
    assert (await refusal(breakers)).until == clock() + 0.001
    clock.advance(0.001)
    fresh = await permit(breakers)
    assert fresh.probe
    await breakers.record_success(lost, CONFIG)  # too late: its slot is gone
    assert await state(breakers) is BreakerState.HALF_OPEN
    await breakers.record_failure(fresh, CONFIG)
    assert await state(breakers) is BreakerState.OPEN


async def test_outcomes_of_permits_granted_before_opening_are_ignored(
    breakers: Breakers, clock: Clock
) -> None:
    early = [await permit(breakers) for _ in range(6)]
    for p in early[:4]:
        await breakers.record_failure(p, CONFIG)
    await breakers.record_success(early[4], CONFIG)
    assert await state(breakers) is BreakerState.OPEN
    clock.advance(5)
    await breakers.record_success(early[5], CONFIG)  # an ordinary permit cannot close a half-open breaker
    assert await state(breakers) is BreakerState.HALF_OPEN


async def test_cool_down_refuses_until_it_ends_and_counts_no_failure(
    breakers: Breakers, clock: Clock
) -> None:
    await breakers.cool_down(KEY, 2.5)
    ends = clock() + 2.5
    assert await refusal(breakers) == Refusal(KEY, BreakerState.CLOSED, ends, "cooling_down")
    await breakers.cool_down(KEY, 1)  # a shorter cool-down does not cut the longer one short
    snapshot = await breakers.snapshot(KEY, CONFIG)
    assert (snapshot.state, snapshot.failures, snapshot.cooling_until) == (BreakerState.CLOSED, 0, ends)
    clock.advance(2.499)
    assert (await refusal(breakers)).until == ends
    clock.advance(0.001)
    await permit(breakers)
    assert (await breakers.snapshot(KEY, CONFIG)).cooling_until is None


async def test_a_refusal_names_the_later_of_cool_down_and_open(breakers: Breakers, clock: Clock) -> None:
    await outcomes(breakers, failures=4)
    reopens = clock() + 5
    await breakers.cool_down(KEY, 2)
    assert await refusal(breakers) == Refusal(KEY, BreakerState.OPEN, reopens, "cooling_down")
    await breakers.cool_down(KEY, 8)
    assert (await refusal(breakers)).until == clock() + 8


async def test_cool_down_holds_for_a_disabled_breaker_and_ignores_nonsense(
    breakers: Breakers, clock: Clock
) -> None:
    disabled = CONFIG.model_copy(update={"enabled": False})
    for seconds in (0, -1, float("nan"), float("inf")):
        await breakers.cool_down(KEY, seconds)
    await permit(breakers, disabled)
    await breakers.cool_down(KEY, 1)
    assert (await refusal(breakers, disabled)).reason == "cooling_down"
    clock.advance(1)
    await permit(breakers, disabled)


async def test_old_outcomes_fall_out_of_the_window(breakers: Breakers, clock: Clock) -> None:
    await outcomes(breakers, failures=3)
    clock.advance(CONFIG.window)
    snapshot = await breakers.snapshot(KEY, CONFIG)
    assert (snapshot.failures, snapshot.successes) == (0, 0)
    await outcomes(breakers, failures=3)
    assert await state(breakers) is BreakerState.CLOSED
    clock.advance(CONFIG.window * 0.8)  # still inside the window: 3 + 1 reach min_requests
    await outcomes(breakers, failures=1)
    assert await state(breakers) is BreakerState.OPEN


async def test_the_window_slides_bucket_by_bucket(breakers: Breakers, clock: Clock) -> None:
    config = CONFIG.model_copy(update={"min_requests": 1000})
    width = CONFIG.window / BUCKETS
    for step in range(2 * BUCKETS + 3):
        await outcomes(breakers, failures=1, config=config)
        assert (await breakers.snapshot(KEY, config)).failures == min(step + 1, BUCKETS)
        clock.advance(width)
    clock.advance(CONFIG.window - 2 * width)
    assert (await breakers.snapshot(KEY, config)).failures == 1


async def test_sparse_outcomes_leave_the_window_once(breakers: Breakers, clock: Clock) -> None:
    config = CONFIG.model_copy(update={"min_requests": 1000})
    for step in range(6):  # one outcome every 7 buckets: each is in the window for two steps
        await outcomes(breakers, failures=1, config=config)
        assert (await breakers.snapshot(KEY, config)).failures == min(step + 1, 2)
        clock.advance(7 * CONFIG.window / BUCKETS)


async def test_a_disabled_breaker_always_allows_and_counts_nothing(breakers: Breakers) -> None:
    disabled = CONFIG.model_copy(update={"enabled": False})
    await outcomes(breakers, failures=20, config=disabled)
    assert await permit(breakers, disabled) == Permit(KEY, probe=False, token=None)
    assert (await breakers.snapshot(KEY, disabled)).failures == 0


async def test_keys_are_independent(breakers: Breakers) -> None:
    await outcomes(breakers, failures=4)
    assert await state(breakers) is BreakerState.OPEN
    await permit(breakers, key="anthropic-west")


# --- Redis only ------------------------------------------------------------------------------------


async def test_redis_keeps_one_expiring_hash_per_key(
    redis_client: Redis, redis_prefix: str, clock: Clock
) -> None:
    breakers = Breakers(RedisBreakerStore(redis_client, prefix=redis_prefix), clock=clock)
    name = f"{redis_prefix}:breaker:{KEY}"
    await permit(breakers)
    assert await redis_client.exists(name) == 0  # an allow while closed writes nothing
    await outcomes(breakers, failures=1, successes=1)
    assert await redis_client.type(name) == b"hash"
    assert 0 < await redis_client.pttl(name) <= 2 * 10_000
    await breakers.cool_down(KEY, 60)
    assert 60_000 < await redis_client.pttl(name) <= 61_000


async def test_redis_errors_fall_back_to_process_state_and_recover(
    redis_client: Redis, redis_prefix: str, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    store = RedisBreakerStore(redis_client, prefix=redis_prefix, recheck=1.0)
    breakers = Breakers(store, clock=clock)
    name = f"{redis_prefix}:breaker:{KEY}"
    await redis_client.set(name, "not a hash")  # every script on this key now fails with WRONGTYPE
    with caplog.at_level(logging.WARNING, logger="interlace.resilience"):
        await outcomes(breakers, failures=4)
        assert store.degraded
        assert (await refusal(breakers)).reason == "open"  # the fallback counted the failures
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 1
    await redis_client.delete(name)
    assert (await refusal(breakers)).reason == "open"  # within recheck: still the fallback
    clock.advance(1)
    await permit(breakers)  # Redis again: the key is gone, so closed
    assert not store.degraded


async def test_an_unreachable_redis_costs_one_bounded_wait_then_none(clock: Clock) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = Redis(host="127.0.0.1", port=port)
    try:
        breakers = Breakers(RedisBreakerStore(client, prefix="unreachable", timeout=0.2), clock=clock)
        loop = asyncio.get_running_loop()
        started = loop.time()
        await permit(breakers)
        assert loop.time() - started < 1
        started = loop.time()
        await outcomes(breakers, failures=4)
        assert loop.time() - started < 0.1  # no new attempt before recheck
        assert (await refusal(breakers)).reason == "open"
        assert breakers.store.degraded  # type: ignore[attr-defined]
    finally:
        await client.aclose()
