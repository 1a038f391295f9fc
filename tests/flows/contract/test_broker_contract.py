"""The connector contract, written once and run against every source/sink pair on this machine.

Publish → consume → ack → nothing redelivered; no ack (nack, or a crash: closed without ack) →
redelivered; backpressure: with ``max_in_flight=k`` never more than k unacknowledged deliveries handed
out; headers and ids round trip; the sink returns only once the broker holds the message.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Self

from tests.support.broker_pairs import Pair

from interlace.flows.message import Delivery, Message
from interlace.flows.ports import Source


def _messages(prefix: str, count: int, **headers: str) -> list[Message]:
    return [
        Message(id=f"{prefix}-{i}", payload={"n": i, "text": f"hello {i}"}, headers=dict(headers))
        for i in range(count)
    ]


async def _write(pair: Pair, messages: list[Message]) -> None:
    sink = pair.new_sink()
    await sink.start()
    try:
        await sink.write(messages)
    finally:
        await sink.aclose()


class Consumer:
    """A started source and its delivery iterator (one ``interlace flow run`` process)."""

    def __init__(self, source: Source, max_in_flight: int) -> None:
        self.source = source
        self.max_in_flight = max_in_flight
        self.it: AsyncIterator[Delivery] | None = None

    async def __aenter__(self) -> Self:
        await self.source.start()
        self.it = self.source.deliveries(max_in_flight=self.max_in_flight)
        return self

    async def next(self) -> Delivery:
        assert self.it is not None
        return await anext(self.it)

    async def take(self, count: int) -> list[Delivery]:
        return [await self.next() for _ in range(count)]

    async def __aexit__(self, *exc: object) -> None:
        if self.it is not None:
            aclose = getattr(self.it, "aclose", None)
            if aclose is not None:
                with contextlib.suppress(Exception):
                    await aclose()
        await self.source.aclose()


async def _prepare(pair: Pair) -> None:
    """Create the durable / queue / group / session before anything is published to it."""
    source = pair.new_source()
    await source.start()
    await source.aclose()


async def test_acked_messages_are_not_redelivered(pair: Pair) -> None:
    await _prepare(pair)
    sent = _messages("a", 20)
    await _write(pair, sent)
    async with Consumer(pair.new_source(), max_in_flight=8) as consumer:
        seen = []
        for _ in sent:
            delivery = await consumer.next()
            seen.append(delivery.message.id)
            await delivery.ack()
    assert sorted(seen) == sorted(m.id for m in sent)
    assert [m.id for m in sent] == seen  # one queue, one consumer: publication order

    await _write(pair, _messages("marker", 1))
    async with Consumer(pair.new_source(), max_in_flight=8) as consumer:
        first = await consumer.next()
        assert first.message.id == "marker-0"  # nothing acknowledged came back before it
        assert not first.redelivered
        await first.ack()


async def test_messages_not_acked_before_a_crash_are_redelivered(pair: Pair) -> None:
    await _prepare(pair)
    sent = _messages("c", 5)
    await _write(pair, sent)
    async with Consumer(pair.new_source(), max_in_flight=5) as consumer:
        taken = await consumer.take(5)
        assert {d.message.id for d in taken} == {m.id for m in sent}
        # the process dies: closed without an ack
    async with Consumer(pair.new_source(), max_in_flight=5) as consumer:
        again = await consumer.take(5)
        assert {d.message.id for d in again} == {m.id for m in sent}
        assert all(d.redelivered for d in again)
        for delivery in again:
            await delivery.ack()


async def test_a_nacked_message_is_redelivered(pair: Pair) -> None:
    await _prepare(pair)
    await _write(pair, _messages("n", 1))
    async with Consumer(pair.new_source(), max_in_flight=2) as consumer:
        first = await consumer.next()
        assert not first.redelivered
        await first.nack(requeue=True)
        second = await consumer.next()
        assert second.message.id == first.message.id == "n-0"
        assert second.message.payload == {"n": 0, "text": "hello 0"}
        assert second.redelivered
        await second.ack()


async def test_never_more_than_max_in_flight_unacknowledged(pair: Pair) -> None:
    await _prepare(pair)
    sent = _messages("b", 10)
    await _write(pair, sent)
    async with Consumer(pair.new_source(), max_in_flight=3) as consumer:
        held = await consumer.take(3)
        waiting = asyncio.ensure_future(consumer.next())
        await asyncio.sleep(0.3)
        assert not waiting.done(), "a fourth delivery was handed out with three unacknowledged"
        if pair.unacked is not None:
            assert await pair.unacked(len(sent)) == 3  # the broker holds the rest
        await held[0].ack()
        fourth = await waiting
        delivered = [*held, fourth]
        for delivery in delivered[1:]:
            await delivery.ack()
        for _ in range(len(sent) - len(delivered)):
            delivery = await consumer.next()
            delivered.append(delivery)
            await delivery.ack()
    assert sorted(d.message.id for d in delivered) == sorted(m.id for m in sent)


async def test_headers_ids_and_payloads_round_trip(pair: Pair) -> None:
    await _prepare(pair)
    traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    sent = Message(
        id="order-42",
        payload={"order": 42, "note": "café ☕"},
        headers={"traceparent": traceparent, "x-tenant": "acme"},
    )
    await _write(pair, [sent])
    async with Consumer(pair.new_source(), max_in_flight=1) as consumer:
        got = await consumer.next()
        await got.ack()
    assert got.message.id == "order-42"
    assert got.message.payload == sent.payload
    assert got.message.headers["traceparent"] == traceparent
    assert got.message.headers["x-tenant"] == "acme"
    assert got.message.source


async def test_the_sink_returns_once_the_broker_holds_the_message(pair: Pair) -> None:
    await _prepare(pair)
    message = _messages("d", 1)[0]
    await _write(pair, [message])  # the sink is closed before anyone reads
    await _write(pair, [message])  # a redelivered message written again
    await _write(pair, _messages("marker", 1))
    ids = []
    async with Consumer(pair.new_source(), max_in_flight=4) as consumer:
        while not ids or ids[-1] != "marker-0":
            delivery = await consumer.next()
            ids.append(delivery.message.id)
            await delivery.ack()
    assert ids.count("d-0") == (1 if pair.dedupes_by_id else 2)
