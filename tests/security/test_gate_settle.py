"""Settling an admission: holds whose state is at hand settle at once, the rest in a tracked task.

The in-process quota store settles when the recording calls :meth:`Admission.settle` (no task: one
per request cost more than the settlement); a hold that needs I/O, and every hold after it, settles
in a task the gate waits for on close; a hold that fails is logged and the others still settle.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import pytest
from tests.support.events import record

from interlace.core.operations import ChatRequest
from interlace.core.principal import Limits, Principal
from interlace.routing.context import RouteContext
from interlace.security.gate import Call, Gate, Hold
from interlace.security.quotas import MemoryQuotaStore
from interlace.security.quotas.metrics import QuotaMetrics
from interlace.security.quotas.ratelimit import RateLimitPolicy
from interlace.security.quotas.store import Bucket, Demand, QuotaStore, Settled

if TYPE_CHECKING:
    from collections.abc import Sequence

    from interlace.observability.record import RequestRecord

KEY = Principal(kind="key", id="ik_1", tenant="shop", limits=Limits(rpm=100, tpm=100_000))
T0 = 1_800_000_000.0


def call() -> Call[Any]:
    op = ChatRequest(model="m", body={"model": "m", "messages": [{"role": "user", "content": "hi"}]})
    return Call(KEY, "chat", op, RouteContext(principal=KEY))


class _Recorded(Hold):
    """A hold that notes, in a shared list, how it settled."""

    def __init__(self, name: str, notes: list[str], *, at_once: bool, fails: bool = False) -> None:
        self.name, self.notes, self.at_once, self.fails = name, notes, at_once, fails

    async def settle(self, record: RequestRecord) -> None:
        self.notes.append(f"{self.name}:task")

    def settle_at_once(self, record: RequestRecord) -> bool:
        if self.fails:
            raise RuntimeError(self.name)
        if self.at_once:
            self.notes.append(f"{self.name}:at once")
        return self.at_once


class _Holding:
    name = "holding"

    def __init__(self, hold: Hold) -> None:
        self.hold = hold

    async def admit(self, call: Call[Any]) -> Hold | None:
        return self.hold


async def test_holds_settle_at_once_until_one_must_be_awaited_then_in_order_in_a_task() -> None:
    notes: list[str] = []
    holds = [
        _Recorded("c", notes, at_once=True),
        _Recorded("b", notes, at_once=False),
        _Recorded("a", notes, at_once=True),
    ]  # admitted a, b, c: unwound c, b, a
    gate = Gate([_Holding(hold) for hold in reversed(holds)])
    admission = await gate.admit(call())
    admission.settle(record())
    assert notes == ["c:at once"]
    await gate.aclose()
    assert notes == ["c:at once", "b:task", "a:task"]
    admission.settle(record())  # once only
    await gate.aclose()
    assert len(notes) == 3


async def test_a_hold_that_fails_is_logged_and_the_others_still_settle(
    caplog: pytest.LogCaptureFixture,
) -> None:
    notes: list[str] = []
    gate = Gate(
        [
            _Holding(_Recorded("late", notes, at_once=True)),
            _Holding(_Recorded("x", notes, at_once=True, fails=True)),
        ]
    )
    admission = await gate.admit(call())
    with caplog.at_level(logging.ERROR, "interlace.security.gate"):
        admission.settle(record(request_id="req-7"))
    assert notes == ["late:at once"]
    assert "could not settle _Recorded for request req-7" in caplog.text
    assert "RuntimeError: x" in caplog.text


async def test_the_in_process_store_settles_a_rate_limit_without_a_task() -> None:
    store = MemoryQuotaStore()
    policy = RateLimitPolicy(store, metrics=QuotaMetrics(), clock=lambda: T0)
    gate = Gate([policy])
    admission = await gate.admit(call())
    tokens = Bucket("rl:key:ik_1:tokens", 100_000, 60_000)
    reserved, _ = await store.used(tokens, int(T0 * 1000))
    assert reserved > 4096  # the prompt's estimate and the default output allowance
    admission.settle(record(prompt=3, completion=5))
    assert not gate._tasks  # nothing left to run: the window already counts the real usage
    assert await store.used(tokens, int(T0 * 1000)) == (8, 0)


class _RemoteStore(QuotaStore):
    """A store that must be awaited (as Redis is): it has no at-once path."""

    def __init__(self) -> None:
        self.inner = MemoryQuotaStore()

    async def reserve(self, reservation: str, demands: Sequence[Demand], now_ms: int) -> Any:
        return await self.inner.reserve(reservation, demands, now_ms)

    async def settle(self, reservation: str, demands: Sequence[Demand], now_ms: int) -> tuple[Settled, ...]:
        return await self.inner.settle(reservation, demands, now_ms)

    async def used(self, bucket: Bucket, now_ms: int) -> tuple[int, int]:
        return await self.inner.used(bucket, now_ms)


async def test_a_store_that_must_be_awaited_settles_in_the_task() -> None:
    store = _RemoteStore()
    gate = Gate([RateLimitPolicy(store, metrics=QuotaMetrics(), clock=lambda: T0)])
    admission = await gate.admit(call())
    admission.settle(record(prompt=3, completion=5))
    assert len(gate._tasks) == 1
    await gate.aclose()
    assert await store.used(Bucket("rl:key:ik_1:tokens", 100_000, 60_000), int(T0 * 1000)) == (8, 0)
