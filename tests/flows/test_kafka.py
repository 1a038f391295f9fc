"""Kafka source and sink at the client boundary.

No Kafka broker can run in this project's test environment, so these tests inject fake
``AIOKafkaConsumer`` / ``AIOKafkaProducer`` objects (the same methods, in memory) and check what the
connector does with them: which offsets it commits when confirmations arrive out of order, that it
never polls for more records than free in-flight slots, seeks back on a nack, forgets revoked
partitions, and produces with ``acks=all`` and idempotence. They do not prove interoperability with a
real broker.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiokafka.structs import TopicPartition  # type: ignore[import-untyped]

from interlace.flows.connectors.kafka import (
    KafkaSink,
    KafkaSinkConfig,
    KafkaSource,
    KafkaSourceConfig,
    PartitionOffsets,
)
from interlace.flows.connectors.kafka.sink import _default_producer
from interlace.flows.message import Delivery, Message

TP0 = TopicPartition("orders", 0)
TP1 = TopicPartition("orders", 1)


@dataclass
class Record:
    topic: str
    partition: int
    offset: int
    value: bytes
    key: bytes | None = None
    headers: tuple[tuple[str, bytes], ...] = ()


@dataclass
class FakeConsumer:
    """In-memory partitions; getmany serves from a position per partition, like the real client."""

    logs: dict[TopicPartition, list[Record]]
    positions: dict[TopicPartition, int] = field(default_factory=dict)
    commits: list[dict[TopicPartition, int]] = field(default_factory=list)
    asked: list[int] = field(default_factory=list)
    listener: Any = None
    started: bool = False

    def subscribe(self, topics: Collection[str], *, listener: Any) -> None:
        self.listener = listener

    async def start(self) -> None:
        self.started = True

    async def stop(self) -> None:
        self.started = False

    async def getmany(self, *, timeout_ms: int, max_records: int) -> dict[TopicPartition, list[Record]]:
        self.asked.append(max_records)
        out: dict[TopicPartition, list[Record]] = {}
        budget = max_records
        for tp, log in self.logs.items():
            pos = self.positions.get(tp, 0)
            ready = [r for r in log if r.offset >= pos][:budget]
            if ready:
                out[tp] = ready
                self.positions[tp] = ready[-1].offset + 1
                budget -= len(ready)
        if not out:
            await asyncio.sleep(0)  # an empty poll: give acks a turn
        return out

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        self.commits.append(dict(offsets))

    def seek(self, partition: TopicPartition, offset: int) -> None:
        self.positions[partition] = offset


def _log(tp: TopicPartition, offsets: list[int]) -> list[Record]:
    return [
        Record(tp.topic, tp.partition, o, b'{"n": %d}' % o, key=b"k", headers=(("traceparent", b"tp"),))
        for o in offsets
    ]


async def _source(consumer: FakeConsumer) -> KafkaSource:
    config = KafkaSourceConfig(type="kafka", topics=["orders"], group_id="g", poll_timeout=0.01)
    source = KafkaSource(config, consumer_factory=lambda _: consumer)
    await source.start()
    return source


async def _take(it: Any, count: int) -> list[Delivery]:
    return [await anext(it) for _ in range(count)]


async def test_commits_only_the_highest_contiguous_confirmed_offset() -> None:
    consumer = FakeConsumer({TP0: _log(TP0, [0, 1, 2, 3, 4])})
    source = await _source(consumer)
    d = await _take(source.deliveries(max_in_flight=5), 5)
    await d[2].ack()
    await d[1].ack()
    assert consumer.commits == []  # offset 0 is not confirmed: nothing may be committed
    await d[0].ack()
    assert consumer.commits == [{TP0: 3}]
    await d[4].ack()
    assert consumer.commits == [{TP0: 3}]
    await d[3].ack()
    assert consumer.commits == [{TP0: 3}, {TP0: 5}]
    await source.aclose()
    assert not consumer.started


async def test_gaps_in_offsets_do_not_block_commits_and_partitions_are_independent() -> None:
    consumer = FakeConsumer({TP0: _log(TP0, [0, 2, 5]), TP1: _log(TP1, [7])})
    source = await _source(consumer)
    d = await _take(source.deliveries(max_in_flight=4), 4)
    by_tp = {(x.message.position, x.message.source): x for x in d}
    assert by_tp[("7", "kafka:orders")].message.id == "orders:1:7"
    for delivery in d:
        await delivery.ack()
    assert {TP0: 6} in consumer.commits
    assert {TP1: 8} in consumer.commits


async def test_polls_never_ask_for_more_than_the_free_slots() -> None:
    consumer = FakeConsumer({TP0: _log(TP0, list(range(10)))})
    source = await _source(consumer)
    it = source.deliveries(max_in_flight=3)
    held = await _take(it, 3)
    assert consumer.asked == [3]
    waiting = asyncio.ensure_future(anext(it))
    for _ in range(5):
        await asyncio.sleep(0)
    assert not waiting.done()
    assert consumer.asked == [3]  # no poll while every slot is taken
    await held[0].ack()
    fourth = await waiting
    assert fourth.message.position == "3"
    assert max(consumer.asked) <= 3
    assert consumer.asked[-1] == 1


async def test_a_nack_seeks_back_and_the_record_comes_again_marked_redelivered() -> None:
    consumer = FakeConsumer({TP0: _log(TP0, [0, 1, 2])})
    source = await _source(consumer)
    it = source.deliveries(max_in_flight=3)
    first = await _take(it, 3)
    await first[0].ack()
    await first[1].nack(requeue=True)
    await first[2].ack()  # a confirmation of a record that will be fetched again commits nothing
    assert consumer.commits == [{TP0: 1}]
    again = await _take(it, 2)
    assert [x.message.position for x in again] == ["1", "2"]
    assert all(x.redelivered for x in again)
    for delivery in again:
        await delivery.ack()
    assert consumer.commits[-1] == {TP0: 3}


async def test_revoked_partitions_are_forgotten() -> None:
    consumer = FakeConsumer({TP0: _log(TP0, [0, 1])})
    source = await _source(consumer)
    d = await _take(source.deliveries(max_in_flight=2), 2)
    await consumer.listener.on_partitions_revoked([TP0])
    await d[0].ack()
    await d[1].ack()
    assert consumer.commits == []  # the new owner replays from the last commit


async def test_messages_carry_key_headers_and_payload() -> None:
    consumer = FakeConsumer({TP0: _log(TP0, [0])})
    source = await _source(consumer)
    (delivery,) = await _take(source.deliveries(max_in_flight=1), 1)
    assert delivery.message.payload == {"n": 0}
    assert delivery.message.key == "k"
    assert delivery.message.headers == {"traceparent": "tp"}
    assert not delivery.redelivered


def test_offsets_ignore_a_second_confirmation() -> None:
    offsets = PartitionOffsets()
    a = offsets.hand(0)
    assert offsets.confirm(a) == 1
    assert offsets.confirm(a) is None


@dataclass
class FakeProducer:
    config: KafkaSinkConfig
    sent: list[tuple[str, bytes, bytes | None, list[tuple[str, bytes]]]] = field(default_factory=list)
    fail: bool = False

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def send_and_wait(
        self, topic: str, value: bytes, *, key: bytes | None, headers: list[tuple[str, bytes]]
    ) -> Any:
        if self.fail:
            raise RuntimeError("not enough in-sync replicas")
        self.sent.append((topic, value, key, headers))


async def test_the_sink_sends_id_key_and_headers_and_raises_when_not_acknowledged() -> None:
    producers: list[FakeProducer] = []

    def factory(config: KafkaSinkConfig) -> FakeProducer:
        producers.append(FakeProducer(config))
        return producers[-1]

    sink = KafkaSink(KafkaSinkConfig(type="kafka", topic="out"), producer_factory=factory)
    await sink.start()
    await sink.write([Message(id="m1", payload={"a": 1}, key="k1", headers={"traceparent": "t"})])
    assert producers[0].sent == [("out", b'{"a":1}', b"k1", [("interlace-id", b"m1"), ("traceparent", b"t")])]
    producers[0].fail = True
    with pytest.raises(RuntimeError):
        await sink.write([Message(id="m2", payload={})])
    await sink.aclose()


async def test_the_real_producer_is_built_with_acks_all_and_idempotence() -> None:
    producer: Any = _default_producer(KafkaSinkConfig(type="kafka", topic="out"))
    assert producer._sender._acks == -1  # "all" in-sync replicas
    assert producer._txn_manager is not None  # the idempotent producer's sequence numbers
    await producer.stop()
