"""The connector contract, written once and run against every source/sink pair on this machine.

Publish → consume → ack → nothing redelivered; no ack (nack, or a crash: closed without ack) →
redelivered, with the same ids (flagged ``redelivered`` where the pair says it can tell);
backpressure: with ``max_in_flight=k`` never more than k unacknowledged deliveries handed out;
payloads, ids and (where the pair keeps them) headers round trip; the sink returns only once the
destination holds the message. What each connector promises is a capability of its
:class:`~tests.support.connector_pairs.Pair`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Self

from tests.support.connector_pairs import Pair

from interlace.flows.message import Delivery, Message
from interlace.flows.ports import Source


def _messages(prefix: str, count: int, **headers: str) -> list[Message]:
    return [
        Message(id=f"{prefix}-{i}", payload={"n": i, "text": f"hello {i}"}, headers=dict(headers))
        for i in range(count)
    ]


async def _write(pair: Pair, messages: list[Message]) -> None:
    """Through the pair's sink."""
    assert pair.new_sink is not None
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


async def _send(pair: Pair, messages: list[Message]) -> None:
    """Into the pair's source, as its producers do."""
    if pair.publish is not None:
        await pair.publish(messages)
    else:
        await _write(pair, messages)


def _source(pair: Pair) -> Source:
    assert pair.new_source is not None
    return pair.new_source()


def _sent(pair: Pair, delivery: Delivery) -> Message:
    """The delivered message as the producer sent it."""
    return pair.unwrap(delivery.message)


async def _prepare(pair: Pair) -> None:
    """Create the durable / queue / group / session / slot before anything is published to it."""
    if pair.new_source is None:
        return
    source = pair.new_source()
    await source.start()
    await source.aclose()


async def _read_back(pair: Pair, last: str) -> list[Message]:
    """What the sink wrote, up to the message ``last`` (from the destination, or through the source)."""
    if pair.stored is not None:
        return await pair.stored()
    got: list[Message] = []
    async with Consumer(_source(pair), max_in_flight=4) as consumer:
        while not got or got[-1].id != last:
            delivery = await consumer.next()
            got.append(_sent(pair, delivery))
            await delivery.ack()
    return got


async def test_acked_messages_are_not_redelivered(pair: Pair) -> None:
    await _prepare(pair)
    sent = _messages("a", 20)
    await _send(pair, sent)
    async with Consumer(_source(pair), max_in_flight=8) as consumer:
        seen = []
        for _ in sent:
            delivery = await consumer.next()
            seen.append(_sent(pair, delivery).id)
            await delivery.ack()
    assert sorted(seen) == sorted(m.id for m in sent)
    if pair.ordered:
        assert [m.id for m in sent] == seen  # one queue, one consumer: publication order

    await _send(pair, _messages("marker", 1))
    async with Consumer(_source(pair), max_in_flight=8) as consumer:
        first = await consumer.next()
        assert _sent(pair, first).id == "marker-0"  # nothing acknowledged came back before it
        assert not first.redelivered
        await first.ack()


async def test_messages_not_acked_before_a_crash_are_redelivered(pair: Pair) -> None:
    await _prepare(pair)
    sent = _messages("c", 5)
    await _send(pair, sent)
    async with Consumer(_source(pair), max_in_flight=5) as consumer:
        taken = await consumer.take(5)
        assert {_sent(pair, d).id for d in taken} == {m.id for m in sent}
        # the process dies: closed without an ack
    async with Consumer(_source(pair), max_in_flight=5) as consumer:
        again = await consumer.take(5)
        assert {_sent(pair, d).id for d in again} == {m.id for m in sent}
        assert {d.message.id for d in again} == {d.message.id for d in taken}  # ids are stable
        assert [_sent(pair, d).payload for d in again] == [_sent(pair, d).payload for d in taken]
        assert all(d.redelivered == pair.redelivered_after_crash for d in again)
        for delivery in again:
            await delivery.ack()


async def test_a_nacked_message_is_redelivered(pair: Pair) -> None:
    await _prepare(pair)
    await _send(pair, _messages("n", 1))
    async with Consumer(_source(pair), max_in_flight=2) as consumer:
        first = await consumer.next()
        assert not first.redelivered
        await first.nack(requeue=True)
        second = await consumer.next()
        assert second.message.id == first.message.id
        assert _sent(pair, second).id == "n-0"
        assert _sent(pair, second).payload == {"n": 0, "text": "hello 0"}
        assert second.redelivered == pair.redelivered_after_nack
        await second.ack()


async def test_never_more_than_max_in_flight_unacknowledged(pair: Pair) -> None:
    await _prepare(pair)
    sent = _messages("b", 10)
    await _send(pair, sent)
    async with Consumer(_source(pair), max_in_flight=3) as consumer:
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
    assert sorted(_sent(pair, d).id for d in delivered) == sorted(m.id for m in sent)


async def test_headers_ids_and_payloads_round_trip(pair: Pair) -> None:
    await _prepare(pair)
    traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    sent = Message(
        id="order-42",
        payload={"order": 42, "note": "café ☕"},
        headers={"traceparent": traceparent, "x-tenant": "acme"},
    )
    await _send(pair, [sent])
    async with Consumer(_source(pair), max_in_flight=1) as consumer:
        got = await consumer.next()
        await got.ack()
    if pair.producer_ids:
        assert got.message.id == "order-42"
    assert got.message.id
    assert _sent(pair, got).id == "order-42"
    assert _sent(pair, got).payload == sent.payload
    if pair.source_headers:
        assert got.message.headers["traceparent"] == traceparent
        assert got.message.headers["x-tenant"] == "acme"
    assert got.message.source


async def test_the_sink_keeps_payloads_ids_and_headers(sink_pair: Pair) -> None:
    pair = sink_pair
    await _prepare(pair)
    traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    sent = Message(
        id="order-43",
        payload={"order": 43, "note": "café ☕"},
        headers={"traceparent": traceparent, "x-tenant": "acme"},
    )
    await _write(pair, [sent, *_messages("marker", 1)])
    got = {m.id: m for m in await _read_back(pair, "marker-0")}
    assert got["order-43"].payload == sent.payload
    if pair.sink_headers != "none":
        assert got["order-43"].headers["traceparent"] == traceparent
    if pair.sink_headers == "all":
        assert got["order-43"].headers["x-tenant"] == "acme"


async def test_the_sink_returns_once_the_destination_holds_the_message(sink_pair: Pair) -> None:
    pair = sink_pair
    await _prepare(pair)
    message = _messages("d", 1)[0]
    await _write(pair, [message])  # the sink is closed before anyone reads
    await _write(pair, [message])  # a redelivered message written again
    await _write(pair, _messages("marker", 1))
    ids = [m.id for m in await _read_back(pair, "marker-0")]
    assert ids[-1] == "marker-0"
    assert ids.count("d-0") == (1 if pair.dedupes_by_id else 2)
