"""The engine's delivery semantics on the in-memory fakes (interlace.flows.testing)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest

from interlace.config._flow_parts import RetryPolicy
from interlace.core.errors import MessageRejected, RequestError
from interlace.flows.engine import SINK_ATTRIBUTE, FlowEngine, StepSlot
from interlace.flows.message import Message
from interlace.flows.metrics import FlowMetrics
from interlace.flows.testing import FunctionStep, MemoryDelivery, MemorySink, MemorySource, messages

NO_WAIT = RetryPolicy(attempts=3, backoff=0)


def engine(
    source: MemorySource,
    steps: Sequence[Any] = (),
    sinks: dict[str, MemorySink] | None = None,
    *,
    dead: MemorySink | None = None,
    retry: RetryPolicy = NO_WAIT,
    **options: Any,
) -> FlowEngine:
    return FlowEngine(
        "test",
        source,
        [StepSlot(step, retry) for step in steps],
        sinks or {"default": MemorySink()},
        dead_letter=dead or MemorySink(name="dead"),
        retry=retry,
        **options,
    )


async def test_every_message_is_written_then_acked_and_everything_is_closed() -> None:
    source = MemorySource(messages(range(20)))
    sink = MemorySink()
    acked_before_write: list[str] = []

    def settle(message: Message, acked: bool) -> None:
        if acked and message.id not in {m.id for m in sink.written}:
            acked_before_write.append(message.id)

    source.on_settle = settle
    double = FunctionStep("double", lambda m: m.payload * 2)
    stats = await engine(source, [double], {"default": sink}).run()
    assert sorted(sink.payloads) == [n * 2 for n in range(20)]
    assert sorted(source.acked) == sorted(f"m{n}" for n in range(20))
    assert acked_before_write == []
    assert (stats.received, stats.acked, stats.out, stats.in_flight) == (20, 20, 20, 0)
    assert source.closed
    assert sink.closed
    assert source.started
    assert sink.started


async def test_in_flight_deliveries_never_exceed_the_bound() -> None:
    source = MemorySource(messages(range(50)))
    hold = asyncio.Event()
    sink = MemorySink(hold=hold)
    flow = engine(source, [], {"default": sink}, max_in_flight=4)
    running = asyncio.create_task(flow.run())
    while sink.writes < 4:
        await asyncio.sleep(0)
    for _ in range(20):  # the engine does not pull a fifth while four wait for the sink
        await asyncio.sleep(0)
    assert source.unacked == 4
    assert flow.stats.in_flight == 4
    hold.set()
    await running
    assert source.peak_unacked == 4
    assert len(sink.written) == 50


async def test_a_failing_step_is_retried_then_succeeds() -> None:
    failures = {"left": 2}

    def flaky(message: Message) -> Any:
        if failures["left"]:
            failures["left"] -= 1
            raise ConnectionError("upstream hiccup")
        return message.payload

    source = MemorySource(messages(["a"]))
    sink = MemorySink()
    stats = await engine(source, [FunctionStep("flaky", flaky)], {"default": sink}).run()
    assert sink.payloads == ["a"]
    assert stats.errors == 2
    assert stats.dead_letters == 0
    assert source.acked == ["m0"]


async def test_a_poison_message_goes_to_the_dead_letters_with_its_step_and_error_then_is_acked() -> None:
    def picky(message: Message) -> Any:
        if message.payload == "bad":
            raise ValueError("cannot parse 'bad'")
        return message.payload

    step = FunctionStep("parse", picky)
    source = MemorySource(messages(["ok", "bad", "ok2"]))
    sink, dead = MemorySink(), MemorySink(name="dead")
    metrics = FlowMetrics()
    stats = await engine(source, [step], {"default": sink}, dead=dead, metrics=metrics).run()
    assert sink.payloads == ["ok", "ok2"] or sorted(sink.payloads) == ["ok", "ok2"]
    assert len(dead.written) == 1
    letter = dead.written[0].payload
    assert letter["step"] == "parse"
    assert letter["flow"] == "test"
    assert letter["error"]["type"] == "ValueError"
    assert "cannot parse" in letter["error"]["message"]
    assert letter["message"]["payload"] == "bad"
    assert letter["message"]["id"] == "m1"
    assert sorted(source.acked) == ["m0", "m1", "m2"]
    assert step.calls == 2 + 3  # the poison message had all three attempts
    assert stats.dead_letters == 1
    assert (
        metrics.registry.get_sample_value(
            "interlace_flow_dead_letters_total", {"flow": "test", "step": "parse"}
        )
        == 1.0
    )


async def test_a_permanent_error_is_not_retried() -> None:
    def refuse(message: Message) -> Any:
        raise RequestError("the input has no text", param="/text")

    step = FunctionStep("ai", refuse)
    dead = MemorySink(name="dead")
    await engine(MemorySource(messages(["x"])), [step], dead=dead).run()
    assert step.calls == 1
    assert dead.written[0].payload["error"]["code"] == "invalid_request"


async def test_a_sink_that_stays_down_gets_the_delivery_nacked_not_dead_lettered() -> None:
    source = MemorySource(messages(["x"]))
    sink, dead = MemorySink(fail=10), MemorySink(name="dead")
    stats = await engine(source, [], {"default": sink}, dead=dead).run()
    assert source.nacked == ["m0"]
    assert source.acked == []
    assert dead.written == []
    assert stats.errors == 3


async def test_a_sink_recovering_within_the_retries_confirms_and_acks() -> None:
    source = MemorySource(messages(["x"]))
    sink = MemorySink(fail=2)
    await engine(source, [], {"default": sink}).run()
    assert sink.payloads == ["x"]
    assert source.acked == ["m0"]


async def test_a_sink_refusing_a_message_dead_letters_it() -> None:
    source = MemorySource(messages(["x", "y"]))
    sink, dead = MemorySink(reject={"m1"}), MemorySink(name="dead")
    await engine(source, [], {"default": sink}, dead=dead).run()
    assert sink.payloads == ["x"]
    assert dead.written[0].payload["step"] == "sink:default"
    assert sorted(source.acked) == ["m0", "m1"]


async def test_a_dead_letter_sink_that_fails_hands_the_message_back() -> None:
    source = MemorySource(messages(["x"]))
    boom = FunctionStep("boom", lambda m: (_ for _ in ()).throw(MessageRejected("no")))
    await engine(source, [boom], dead=MemorySink(name="dead", fail=100)).run()
    assert source.nacked == ["m0"]
    assert source.acked == []


async def test_fan_out_to_routed_sinks_acks_only_after_both_confirmed() -> None:
    def split(message: Message) -> list[Message]:
        left = message.derive({"half": "a"})
        left.attributes[SINK_ATTRIBUTE] = "a"
        right = message.derive({"half": "b"})
        right.attributes[SINK_ATTRIBUTE] = "b"
        return [left, right]

    hold = asyncio.Event()
    a, b = MemorySink(name="a"), MemorySink(name="b", hold=hold)
    source = MemorySource(messages(["x"]))
    running = asyncio.create_task(engine(source, [FunctionStep("split", split)], {"a": a, "b": b}).run())
    while not a.written or b.writes == 0:
        await asyncio.sleep(0)
    assert source.acked == []  # a confirmed, b has not yet
    hold.set()
    await running
    assert source.acked == ["m0"]
    assert b.payloads == [{"half": "b"}]


async def test_filtered_messages_are_acked_without_output() -> None:
    source = MemorySource(messages(range(4)))
    sink = MemorySink()
    evens = FunctionStep("evens", lambda m: m.payload if m.payload % 2 == 0 else None)
    stats = await engine(source, [evens], {"default": sink}).run()
    assert sorted(sink.payloads) == [0, 2]
    assert len(source.acked) == 4
    assert stats.dropped == 2


async def test_messages_with_the_same_key_run_one_at_a_time_in_order() -> None:
    running: dict[str, int] = {}
    seen: list[tuple[str, int]] = []
    overlap: list[str] = []

    async def slow(message: Message) -> Any:
        key = str(message.key)
        running[key] = running.get(key, 0) + 1
        if running[key] > 1:
            overlap.append(key)
        await asyncio.sleep(0.001 * (3 - message.payload["n"] % 3))  # later ones finish sooner if unordered
        seen.append((key, message.payload["n"]))
        running[key] -= 1
        return message.payload

    payloads = [{"k": f"k{n % 3}", "n": n} for n in range(30)]
    source = MemorySource(messages(payloads, key=lambda p: p["k"]))
    sink = MemorySink()
    flow = engine(source, [FunctionStep("slow", slow)], {"default": sink}, ordering="key", max_in_flight=16)
    await flow.run()
    assert overlap == []
    for key in ("k0", "k1", "k2"):
        order = [n for k, n in seen if k == key]
        assert order == sorted(order)
        assert len(order) == 10
        written = [m.payload["n"] for m in sink.written if m.payload["k"] == key]
        assert written == sorted(written)
    assert len(flow._sequencer) == 0


async def test_stop_drains_in_flight_messages_and_stops_pulling() -> None:
    source = MemorySource(messages(range(100)), finite=False)
    started = asyncio.Event()
    release = asyncio.Event()

    async def wait(message: Message) -> Any:
        started.set()
        await release.wait()
        return message.payload

    sink = MemorySink()
    stop = asyncio.Event()
    flow = engine(source, [FunctionStep("wait", wait)], {"default": sink}, max_in_flight=5, drain_timeout=5)
    running = asyncio.create_task(flow.run(stop))
    await started.wait()
    stop.set()
    for _ in range(10):
        await asyncio.sleep(0)
    release.set()
    stats = await running
    assert stats.acked == 5
    assert sorted(source.acked) == [f"m{n}" for n in range(5)]
    assert source.nacked == []
    assert source.closed


async def test_what_does_not_finish_within_the_drain_timeout_is_nacked() -> None:
    source = MemorySource(messages(range(10)), finite=False)
    started = asyncio.Event()

    async def forever(message: Message) -> Any:
        started.set()
        await asyncio.Event().wait()

    stop = asyncio.Event()
    flow = engine(source, [FunctionStep("forever", forever)], max_in_flight=3, drain_timeout=0.01)
    running = asyncio.create_task(flow.run(stop))
    await started.wait()
    stop.set()
    stats = await running
    assert sorted(source.nacked) == ["m0", "m1", "m2"]
    assert source.acked == []
    assert stats.in_flight == 0
    assert source.unacked == 0


class _Batch:
    def __init__(self, size: int, window: float, *, fail: int = 0) -> None:
        self.name = "batch"
        self.size = size
        self.window = window
        self.fail = fail
        self.batches: list[list[str]] = []

    async def process_batch(self, batch: Sequence[Message]) -> list[list[Message]]:
        if self.fail:
            self.fail -= 1
            raise ConnectionError("batch call failed")
        self.batches.append([m.id for m in batch])
        return [[m.derive({"n": m.payload, "batch": len(batch)})] for m in batch]


async def test_a_batch_step_groups_full_batches_and_keeps_acks_per_message() -> None:
    step = _Batch(size=4, window=30)
    source = MemorySource(messages(range(8)))
    sink = MemorySink()
    await engine(source, [step], {"default": sink}, max_in_flight=8).run()
    assert [len(b) for b in step.batches] == [4, 4]
    assert sorted(m.payload["n"] for m in sink.written) == list(range(8))
    assert sorted(source.acked) == sorted(f"m{n}" for n in range(8))


async def test_a_batch_is_flushed_by_its_window_when_it_cannot_fill() -> None:
    step = _Batch(size=100, window=0.01)
    source = MemorySource(messages(range(3)))
    sink = MemorySink()
    await engine(source, [step], {"default": sink}, max_in_flight=3).run()
    assert step.batches == [["m0", "m1", "m2"]]
    assert {m.payload["batch"] for m in sink.written} == {3}


async def test_a_batch_that_fails_for_good_dead_letters_each_message() -> None:
    step = _Batch(size=2, window=30, fail=100)
    source = MemorySource(messages(range(2)))
    dead = MemorySink(name="dead")
    stats = await engine(source, [step], dead=dead, max_in_flight=2).run()
    assert sorted(m.payload["message"]["id"] for m in dead.written) == ["m0", "m1"]
    assert stats.errors == 3  # three attempts of the one batch
    assert {m.payload["step"] for m in dead.written} == {"batch"}
    assert sorted(source.acked) == ["m0", "m1"]


class _Confirming:
    name = "remember"

    def __init__(self) -> None:
        self.confirmed_ids: list[str] = []

    async def process(self, message: Message) -> list[Message]:
        return [message]

    async def confirmed(self, outputs: Sequence[Message]) -> None:
        self.confirmed_ids.extend(m.id for m in outputs)


async def test_confirmation_hooks_run_only_after_the_sink_confirmed() -> None:
    step = _Confirming()
    source = MemorySource(messages(["a", "b"]))
    await engine(source, [step], {"default": MemorySink(reject={"m1"})}).run()
    assert step.confirmed_ids == ["m0"]


@pytest.mark.parametrize("max_in_flight", [1, 7])
async def test_a_source_error_stops_the_flow_and_is_raised(max_in_flight: int) -> None:
    class Broken(MemorySource):
        async def deliveries(self, *, max_in_flight: int) -> AsyncIterator[MemoryDelivery]:
            before: list[MemoryDelivery] = []
            for delivery in before:
                yield delivery
            raise ConnectionError("broker gone")

    source = Broken(messages(["x"]))
    with pytest.raises(ConnectionError, match="broker gone"):
        await engine(source, [], max_in_flight=max_in_flight).run()
    assert source.closed
