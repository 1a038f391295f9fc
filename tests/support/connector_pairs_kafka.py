"""The Kafka pair, at the client boundary: no Kafka broker runs in this project's test environment.

The Kafka source and sink take ``consumer_factory`` / ``producer_factory``; here both get fakes of
``AIOKafkaConsumer`` / ``AIOKafkaProducer`` over one in-memory single-partition topic with a consumer
group's committed offset: a producer appends records, a consumer starts at the committed offset (what
a restarted group member does) and ``getmany`` returns at most ``max_records``. The contract then
checks the connector's side of it — commits only after acks, replay from the commit after a crash,
seek back on a nack, never fetching more than the free in-flight slots — not interoperability with a
real broker. ``unacked`` is the group's lag behind the consumer's fetch position.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiokafka.structs import TopicPartition  # type: ignore[import-untyped]
from tests.support.connector_pairs import Builder, Pair

from interlace.flows.connectors.kafka import KafkaSink, KafkaSinkConfig, KafkaSource, KafkaSourceConfig

__all__ = ["KAFKA"]

TOPIC = "contract"
TP = TopicPartition(TOPIC, 0)


@dataclass
class _Record:
    topic: str
    partition: int
    offset: int
    value: bytes
    key: bytes | None
    headers: tuple[tuple[str, bytes], ...]


@dataclass
class _Topic:
    """One partition and one consumer group's committed offset."""

    log: list[_Record] = field(default_factory=list)
    committed: int = 0
    fetched: int = 0
    """The live consumer's fetch position."""


@dataclass
class _Consumer:
    topic: _Topic
    position: int = 0

    def subscribe(self, topics: Collection[str], *, listener: Any) -> None:
        del topics, listener

    async def start(self) -> None:
        self.position = self.topic.committed

    async def stop(self) -> None:
        return None

    async def getmany(self, *, timeout_ms: int, max_records: int) -> dict[Any, list[_Record]]:
        ready = self.topic.log[self.position : self.position + max_records]
        if not ready:
            await asyncio.sleep(timeout_ms / 1000)
            return {}
        self.position += len(ready)
        self.topic.fetched = self.position
        return {TP: ready}

    async def commit(self, offsets: dict[Any, int]) -> None:
        self.topic.committed = offsets[TP]

    def seek(self, partition: Any, offset: int) -> None:
        assert partition == TP
        self.position = offset


@dataclass
class _Producer:
    topic: _Topic

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def send_and_wait(
        self, topic: str, value: bytes, *, key: bytes | None, headers: list[tuple[str, bytes]]
    ) -> None:
        log = self.topic.log
        log.append(_Record(topic, 0, len(log), value, key, tuple(headers)))


async def _kafka_pair(tmp: Path) -> Pair:
    del tmp
    topic = _Topic()
    source_config = KafkaSourceConfig(type="kafka", topics=[TOPIC], group_id="flow", poll_timeout=0.02)

    async def unacked(published: int) -> int:
        del published
        return topic.fetched - topic.committed

    async def cleanup() -> None:
        return None

    return Pair(
        kind="kafka",
        new_source=lambda: KafkaSource(source_config, consumer_factory=lambda _: _Consumer(topic)),
        new_sink=lambda: KafkaSink(
            KafkaSinkConfig(type="kafka", topic=TOPIC), producer_factory=lambda _: _Producer(topic)
        ),
        unacked=unacked,
        redelivered_after_crash=False,
        cleanup=cleanup,
    )


def _no_service() -> None:
    return None


KAFKA: dict[str, Builder] = {"kafka-fake-client": Builder(_no_service, _kafka_pair)}
