"""The quota store contract, run against the in-process store and the Redis store alike."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import BlockingConnectionPool, Redis
from tests.support.quotas import REDIS_URL, delete_prefix, new_prefix, require_redis

from interlace.security.quotas import (
    Bucket,
    Demand,
    Denied,
    Granted,
    MemoryQuotaStore,
    QuotaStore,
    RedisQuotaStore,
    Settled,
    SpendQuery,
)

T0 = 1_700_000_000_000
MINUTE = 60_000


@pytest.fixture(params=["memory", "redis"])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[QuotaStore]:
    if request.param == "memory":
        yield MemoryQuotaStore()
        return
    require_redis()
    prefix = new_prefix()
    client = Redis.from_pool(BlockingConnectionPool.from_url(REDIS_URL, max_connections=20))
    redis_store = RedisQuotaStore(client, prefix=prefix, timeout=10)
    try:
        yield redis_store
        assert not redis_store.degraded
    finally:
        await client.aclose()
        delete_prefix(prefix)


def window(name: str, limit: int) -> Bucket:
    return Bucket(name, limit, MINUTE)


def counter(name: str, limit: int, ends_ms: int | None = T0 + 3_600_000) -> Bucket:
    return Bucket(name, limit, None, ends_ms)


async def test_a_window_admits_exactly_its_limit_and_says_when_to_retry(store: QuotaStore) -> None:
    rpm = window("rpm", 5)
    outcomes = [await store.reserve(f"r{i}", [Demand(rpm, 1)], T0 + i * 1000) for i in range(7)]
    assert [isinstance(o, Granted) for o in outcomes] == [True] * 5 + [False] * 2
    granted = outcomes[4]
    assert isinstance(granted, Granted)
    assert granted.levels[0].used == 5
    assert granted.levels[0].reset_ms == MINUTE - 4000  # the oldest leaves the window then
    refused = outcomes[5]
    assert refused == Denied(index=0, used=5, retry_after_ms=MINUTE - 5000)
    assert await store.used(rpm, T0 + 6000) == (5, 0)


async def test_retry_after_and_reset_never_exceed_the_window(store: QuotaStore) -> None:
    """Gateways sharing a store each stamp their own ``now``: one a little behind the reservations
    another made still hears "retry within the window" (the Retry-After of a minute is at most 60)."""
    rpm = window("rpm", 2)
    assert isinstance(await store.reserve("ahead-1", [Demand(rpm, 1)], T0 + 50), Granted)
    behind = await store.reserve("behind", [Demand(rpm, 1)], T0)
    assert isinstance(behind, Granted)
    assert behind.levels[0].reset_ms == MINUTE
    refused = await store.reserve("behind-2", [Demand(rpm, 1)], T0 + 10)
    assert isinstance(refused, Denied)
    assert (refused.index, refused.used) == (0, 2)
    # the memory store keeps arrival order (the T0 + 50 one frees a slot first), Redis time order
    assert MINUTE - 10 <= refused.retry_after_ms <= MINUTE
    one = window("one", 1)
    assert isinstance(await store.reserve("ahead-2", [Demand(one, 1)], T0 + 50), Granted)
    assert await store.reserve("behind-3", [Demand(one, 1)], T0) == Denied(
        index=0, used=1, retry_after_ms=MINUTE
    )


async def test_reservations_leave_the_window_exactly_when_it_has_passed(store: QuotaStore) -> None:
    rpm = window("slide", 2)
    assert isinstance(await store.reserve("a", [Demand(rpm, 1)], T0), Granted)
    assert isinstance(await store.reserve("b", [Demand(rpm, 1)], T0 + 30_000), Granted)
    assert isinstance(await store.reserve("c", [Demand(rpm, 1)], T0 + MINUTE - 1), Denied)
    assert isinstance(await store.reserve("d", [Demand(rpm, 1)], T0 + MINUTE), Granted)  # a has left
    refused = await store.reserve("e", [Demand(rpm, 1)], T0 + MINUTE + 1)
    assert refused == Denied(index=0, used=2, retry_after_ms=30_000 - 1)  # when b leaves
    assert await store.used(rpm, T0 + 2 * MINUTE + 1) == (0, 0)


async def test_all_buckets_or_none(store: QuotaStore) -> None:
    key, model = window("key", 10), window("model", 1)
    assert isinstance(await store.reserve("a", [Demand(model, 1)], T0), Granted)
    refused = await store.reserve("b", [Demand(key, 1), Demand(model, 1)], T0 + 1)
    assert isinstance(refused, Denied)
    assert refused.index == 1
    assert await store.used(key, T0 + 2) == (0, 0)  # nothing taken from the bucket that had room


async def test_retry_after_counts_the_amounts_that_must_leave(store: QuotaStore) -> None:
    tpm = window("tpm", 100)
    await store.reserve("a", [Demand(tpm, 40)], T0)
    await store.reserve("b", [Demand(tpm, 40)], T0 + 10_000)
    await store.reserve("c", [Demand(tpm, 10)], T0 + 20_000)
    # 90 used, 50 asked: 40 must leave — the first reservation is enough
    assert await store.reserve("d", [Demand(tpm, 50)], T0 + 30_000) == Denied(0, 90, MINUTE - 30_000)
    # 71 asked: 61 must leave — the first two
    assert await store.reserve("e", [Demand(tpm, 71)], T0 + 30_000) == Denied(0, 90, MINUTE - 20_000)
    # more than the limit can never fit
    assert await store.reserve("f", [Demand(tpm, 101)], T0 + 30_000) == Denied(0, 90, -1)


async def test_settling_replaces_the_reserved_amount_and_zero_refunds(store: QuotaStore) -> None:
    tpm, rpm = window("tokens", 1000), window("requests", 10)
    demands = [Demand(rpm, 1), Demand(tpm, 600)]
    assert isinstance(await store.reserve("a", demands, T0), Granted)
    assert await store.settle("a", [Demand(rpm, 1), Demand(tpm, 25)], T0 + 5) == (
        Settled(0, 0),
        Settled(0, 0),
    )
    assert await store.used(tpm, T0 + 10) == (25, 0)
    assert await store.used(rpm, T0 + 10) == (1, 0)
    assert isinstance(await store.reserve("b", [Demand(rpm, 1), Demand(tpm, 900)], T0 + 20), Granted)
    await store.settle("b", [Demand(rpm, 0), Demand(tpm, 0)], T0 + 30)  # refunded: never counted
    assert await store.used(tpm, T0 + 40) == (25, 0)
    assert await store.used(rpm, T0 + 40) == (1, 0)
    # the settled amount leaves the window with the time the reservation was made
    assert await store.used(tpm, T0 + MINUTE) == (0, 0)
    assert await store.settle("a", [Demand(rpm, 1)], T0 + MINUTE + 1) == (Settled(-1, -1),)


async def test_a_counter_keeps_settled_spend_and_open_reservations(store: QuotaStore) -> None:
    spend = counter("spend", 1000)
    granted = await store.reserve("a", [Demand(spend, 600)], T0)
    assert isinstance(granted, Granted)
    assert granted.levels[0].used == 600
    assert granted.levels[0].reset_ms == 3_600_000  # the period's end
    refused = await store.reserve("b", [Demand(spend, 500)], T0 + 1)
    assert refused == Denied(0, 600, 3_600_000 - 1)
    assert await store.settle("a", [Demand(spend, 450)], T0 + 2) == (Settled(0, 450),)
    assert await store.used(spend, T0 + 3) == (450, 450)
    assert isinstance(await store.reserve("b", [Demand(spend, 500)], T0 + 4), Granted)
    assert await store.settle("b", [Demand(spend, 0)], T0 + 5) == (Settled(450, 450),)  # released
    assert await store.settle("b", [Demand(spend, 0)], T0 + 6) == (Settled(-1, -1),)  # only once
    assert await store.used(spend, T0 + 7) == (450, 450)
    endless = counter("forever", 10, ends_ms=None)
    await store.reserve("c", [Demand(endless, 10)], T0)
    assert await store.reserve("d", [Demand(endless, 1)], T0) == Denied(0, 10, -1)


async def test_large_amounts_stay_exact(store: QuotaStore) -> None:
    big = counter("nanos", 2**53 - 1)
    amount = 1_234_567_890_123_457
    assert isinstance(await store.reserve("a", [Demand(big, amount)], T0), Granted)
    await store.settle("a", [Demand(big, amount - 1)], T0 + 1)
    assert await store.used(big, T0 + 2) == (amount - 1, amount - 1)


async def test_concurrent_reservations_never_exceed_the_limit(store: QuotaStore) -> None:
    rpm, tpm = window("c-rpm", 50), window("c-tpm", 10_000)
    outcomes = await asyncio.gather(
        *(store.reserve(f"r{i}", [Demand(rpm, 1), Demand(tpm, 150)], T0 + i % 7) for i in range(200))
    )
    assert sum(isinstance(o, Granted) for o in outcomes) == 50
    assert await store.used(rpm, T0 + 10) == (50, 0)
    assert await store.used(tpm, T0 + 10) == (7500, 0)


async def test_the_memory_store_seeds_a_counter_once_from_its_loader() -> None:
    calls: list[SpendQuery] = []

    async def loader(query: SpendQuery) -> int:
        calls.append(query)
        await asyncio.sleep(0.01)
        return 900

    store = MemoryQuotaStore(loader=loader)
    query = SpendQuery("key", "ik_1", None)
    spend = Bucket("budget", 1000, None, None, query)
    outcomes = await asyncio.gather(*(store.reserve(f"r{i}", [Demand(spend, 60)], T0) for i in range(3)))
    assert calls == [query]
    assert sum(isinstance(o, Granted) for o in outcomes) == 1  # 900 spent before the restart
    assert await store.used(spend, T0) == (960, 900)
