"""The bulkhead: never more than max_concurrent in flight, a bounded FIFO queue, cancellation-safe."""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from interlace.core.errors import CapacityExceeded
from interlace.resilience.bulkhead import Bulkhead


async def ticks(n: int) -> None:
    for _ in range(n):
        await asyncio.sleep(0)


def test_rejects_invalid_limits() -> None:
    with pytest.raises(ValueError, match="max_concurrent"):
        Bulkhead(0, 0)
    with pytest.raises(ValueError, match="max_queue"):
        Bulkhead(1, -1)


async def test_unbounded_always_admits_and_counts() -> None:
    bulkhead = Bulkhead(None, 0)
    assert all(bulkhead.try_enter() for _ in range(1000))
    assert await bulkhead.enter(timeout=0)
    assert bulkhead.in_flight == 1001
    for _ in range(1001):
        bulkhead.leave()
    assert bulkhead.in_flight == 0
    with pytest.raises(RuntimeError, match="without a matching enter"):
        bulkhead.leave()
    async with bulkhead.slot(timeout=0):
        assert bulkhead.in_flight == 1
    assert bulkhead.in_flight == 0


async def test_try_enter_up_to_the_limit() -> None:
    bulkhead = Bulkhead(2, 0)
    assert bulkhead.try_enter()
    assert bulkhead.try_enter()
    assert not bulkhead.try_enter()
    assert not await bulkhead.enter(timeout=1.0)  # no queue: refused at once
    bulkhead.leave()
    assert bulkhead.try_enter()
    assert bulkhead.in_flight == 2


async def test_fifo_order_and_no_overtaking() -> None:
    bulkhead = Bulkhead(1, 10)
    assert bulkhead.try_enter()
    order: list[int] = []

    async def waiter(i: int) -> None:
        assert await bulkhead.enter(timeout=5)
        order.append(i)
        await ticks(2)
        bulkhead.leave()

    tasks = [asyncio.create_task(waiter(i)) for i in range(6)]
    await ticks(1)
    assert bulkhead.queued == 6
    assert not bulkhead.try_enter()  # a newcomer does not overtake the queue
    bulkhead.leave()
    assert not bulkhead.try_enter()  # the slot went to the oldest waiter, not to the pool
    await asyncio.gather(*tasks)
    assert order == list(range(6))
    assert (bulkhead.in_flight, bulkhead.queued) == (0, 0)


async def test_queue_bound_refuses_at_once() -> None:
    bulkhead = Bulkhead(1, 2)
    assert bulkhead.try_enter()
    waiters = [asyncio.create_task(bulkhead.enter(timeout=5)) for _ in range(2)]
    await ticks(1)
    assert bulkhead.queued == 2
    started = time.perf_counter()
    assert not await bulkhead.enter(timeout=5)
    assert time.perf_counter() - started < 0.1
    assert bulkhead.queued == 2
    bulkhead.leave()
    assert await waiters[0]
    bulkhead.leave()
    assert await waiters[1]
    bulkhead.leave()
    assert (bulkhead.in_flight, bulkhead.queued) == (0, 0)


async def test_timeout_gives_up_and_leaves_the_queue() -> None:
    bulkhead = Bulkhead(1, 1)
    assert bulkhead.try_enter()
    started = time.perf_counter()
    assert not await bulkhead.enter(timeout=0.02)
    assert 0.015 < time.perf_counter() - started < 1
    assert (bulkhead.in_flight, bulkhead.queued) == (1, 0)
    assert not bulkhead._waiters  # removed at once, not left for a later leave() to skip
    assert not await bulkhead.enter(timeout=0)  # no wait at all
    assert bulkhead.queued == 0
    bulkhead.leave()
    assert bulkhead.in_flight == 0


async def test_cancelled_waiter_leaks_nothing() -> None:
    bulkhead = Bulkhead(1, 1)
    assert bulkhead.try_enter()
    waiter = asyncio.create_task(bulkhead.enter(timeout=5))
    await ticks(1)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert (bulkhead.in_flight, bulkhead.queued) == (1, 0)
    assert not bulkhead._waiters
    bulkhead.leave()
    assert bulkhead.in_flight == 0


async def test_a_waiter_cancelled_but_not_yet_resumed_does_not_block_the_queue() -> None:
    bulkhead = Bulkhead(1, 1)
    holder_done = asyncio.Event()

    async def holder() -> None:
        async with bulkhead.slot(timeout=0):
            await holder_done.wait()

    holding = asyncio.create_task(holder())
    await ticks(1)
    dead = asyncio.create_task(bulkhead.enter(timeout=5))
    await ticks(1)
    assert bulkhead.queued == 1
    dead.cancel()  # its future is cancelled now; its cleanup runs only on the next loop pass
    asyncio.get_running_loop().call_later(0.01, holder_done.set)
    assert await bulkhead.enter(timeout=5)  # the queue is "full" of a dead waiter: it must still admit
    with pytest.raises(asyncio.CancelledError):
        await dead
    await holding
    assert bulkhead.in_flight == 1
    bulkhead.leave()
    assert (bulkhead.in_flight, bulkhead.queued) == (0, 0)


async def test_slot_handed_to_a_waiter_cancelled_at_that_moment_is_passed_on() -> None:
    bulkhead = Bulkhead(1, 5)
    assert bulkhead.try_enter()
    got: list[str] = []

    async def waiter(name: str) -> None:
        assert await bulkhead.enter(timeout=5)
        got.append(name)

    first = asyncio.create_task(waiter("first"))
    second = asyncio.create_task(waiter("second"))
    await ticks(1)
    bulkhead.leave()  # hands the slot to "first"...
    first.cancel()  # ...which is cancelled before it could resume
    with pytest.raises(asyncio.CancelledError):
        await first
    await second
    assert got == ["second"]
    assert (bulkhead.in_flight, bulkhead.queued) == (1, 0)
    bulkhead.leave()
    assert bulkhead.in_flight == 0


async def test_slot_granted_as_the_timeout_fires_is_kept() -> None:
    bulkhead = Bulkhead(1, 1)
    assert bulkhead.try_enter()
    waiter = asyncio.create_task(bulkhead.enter(timeout=0.05))
    await ticks(1)
    asyncio.get_running_loop().call_later(0.01, bulkhead.leave)
    time.sleep(0.08)  # block the loop: the hand-over and the timeout then fire in the same pass
    assert await waiter
    assert (bulkhead.in_flight, bulkhead.queued) == (1, 0)
    bulkhead.leave()
    assert bulkhead.in_flight == 0


async def test_slot_raises_capacity_exceeded_with_retry_after() -> None:
    bulkhead = Bulkhead(1, 0, name="gpt-eu")
    async with bulkhead.slot(timeout=1):
        with pytest.raises(CapacityExceeded) as caught:
            async with bulkhead.slot(timeout=1):
                pytest.fail("admitted beyond the limit")
    error = caught.value
    assert error.status == 503
    assert error.code == "capacity_exceeded"
    assert int(error.headers["retry-after"]) >= 1
    assert "gpt-eu" in error.message
    assert bulkhead.in_flight == 0


async def test_retry_after_estimate_follows_the_hold_time_and_the_queue() -> None:
    bulkhead = Bulkhead(2, 4)
    assert bulkhead.retry_after() == 1  # nothing observed yet
    bulkhead.observe_hold(6.0)
    assert bulkhead.retry_after() == 3  # 6 s per slot, 2 slots, nobody queued
    assert bulkhead.try_enter()
    assert bulkhead.try_enter()
    waiters = [asyncio.create_task(bulkhead.enter(timeout=5)) for _ in range(3)]
    await ticks(1)
    assert bulkhead.retry_after() == 12  # 4 ahead (3 queued + the newcomer) over 2 slots
    assert bulkhead.capacity_error().headers["retry-after"] == "12"
    bulkhead.observe_hold(1000.0)
    assert bulkhead.retry_after() == 60  # capped
    for task in waiters:
        task.cancel()
    await asyncio.gather(*waiters, return_exceptions=True)
    assert bulkhead.queued == 0


async def test_slot_is_released_when_the_block_raises() -> None:
    bulkhead = Bulkhead(1, 0)
    with pytest.raises(KeyError):
        async with bulkhead.slot(timeout=0):
            raise KeyError("boom")
    assert bulkhead.in_flight == 0
    assert bulkhead.try_enter()


@dataclass(frozen=True)
class Plan:
    start: int  # loop passes before it asks
    hold: int  # loop passes it holds the slot
    timeout: float | None
    cancel_at: int | None  # loop pass at which it is cancelled, wherever it is
    use_slot: bool


plans = st.builds(
    Plan,
    start=st.integers(0, 30),
    hold=st.integers(0, 10),
    timeout=st.sampled_from([None, 0.0, 0.0005, 0.002, 10.0]),
    cancel_at=st.one_of(st.none(), st.integers(0, 60)),
    use_slot=st.booleans(),
)


async def run_schedule(limit: int, max_queue: int, workload: list[Plan]) -> None:
    bulkhead = Bulkhead(limit, max_queue)
    holders = 0
    outcomes = {"held": 0, "refused": 0}

    def check() -> None:
        assert holders <= bulkhead.in_flight <= limit
        assert bulkhead.queued <= max_queue

    async def hold(plan: Plan) -> None:
        nonlocal holders
        holders += 1
        outcomes["held"] += 1
        try:
            check()
            for _ in range(plan.hold):
                await asyncio.sleep(0)
                check()
        finally:
            holders -= 1

    async def worker(plan: Plan) -> None:
        await ticks(plan.start)
        if plan.use_slot:
            try:
                async with bulkhead.slot(timeout=plan.timeout):
                    await hold(plan)
            except CapacityExceeded:
                outcomes["refused"] += 1
        elif await bulkhead.enter(timeout=plan.timeout):
            try:
                await hold(plan)
            finally:
                bulkhead.leave()
        else:
            outcomes["refused"] += 1
        check()

    tasks = [asyncio.create_task(worker(plan)) for plan in workload]
    for tick in range(80):
        for task, plan in zip(tasks, workload, strict=True):
            if plan.cancel_at == tick:
                task.cancel()
        check()
        await asyncio.sleep(0)
    results = await asyncio.gather(*tasks, return_exceptions=True)
    for result in results:
        assert result is None or isinstance(result, asyncio.CancelledError), result
    assert (bulkhead.in_flight, bulkhead.queued, holders) == (0, 0, 0)
    assert not bulkhead._waiters  # no dead waiter left behind either
    finished = sum(result is None for result in results)
    assert outcomes["refused"] <= finished


@settings(max_examples=150, deadline=None)
@given(
    limit=st.integers(1, 5),
    max_queue=st.integers(0, 6),
    workload=st.lists(plans, min_size=1, max_size=40),
)
def test_random_schedules_never_exceed_the_limit(limit: int, max_queue: int, workload: list[Plan]) -> None:
    asyncio.run(run_schedule(limit, max_queue, workload))


async def test_many_concurrent_tasks_seeded() -> None:
    rng = random.Random(20240611)
    for _ in range(5):
        workload = [
            Plan(
                start=rng.randrange(40),
                hold=rng.randrange(12),
                timeout=rng.choice([None, 0.0, 0.001, 10.0]),
                cancel_at=rng.randrange(80) if rng.random() < 0.3 else None,
                use_slot=rng.random() < 0.5,
            )
            for _ in range(300)
        ]
        await run_schedule(rng.randint(1, 8), rng.randint(0, 50), workload)
