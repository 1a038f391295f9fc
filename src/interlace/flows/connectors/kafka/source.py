"""Kafka source: a consumer group with manual offset commits after the sinks confirmed.

Auto-commit is off. Each poll asks for at most the free in-flight slots (``max_records``); a delivery's
ack commits the highest contiguous confirmed offset of its partition (:mod:`.offsets`), so a crash
replays from the first unconfirmed record and never skips one. A nack with requeue seeks the partition
back to the record (it and what followed it are fetched again: at-least-once); without requeue it
counts as confirmed. On a rebalance, revoked partitions are forgotten: acks of their records no longer
commit (the new owner replays from the last commit).

``Message.id`` is the ``interlace-id`` header the Kafka sink sets, else ``<topic>:<partition>:<offset>``;
``key`` is the record key; ``position`` the offset. ``redelivered`` is known only within one process
(after a nack); Kafka does not tell a consumer that a record was delivered before a crash.

The client is ``aiokafka.AIOKafkaConsumer``; ``consumer_factory`` replaces it (tests use a fake: no Kafka
broker runs in this project's test environment).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, Protocol

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener  # type: ignore[import-untyped]
from aiokafka.errors import KafkaError  # type: ignore[import-untyped]

from interlace.core.errors import ConfigError
from interlace.flows.connectors._codec import decode_payload
from interlace.flows.connectors._delivery import BrokerDelivery
from interlace.flows.connectors._slots import Slots
from interlace.flows.connectors.kafka.offsets import Handed, PartitionOffsets
from interlace.flows.message import Delivery, Message, header_map

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Collection

    from interlace.flows.connectors.kafka.config import KafkaSourceConfig

__all__ = ["ID_HEADER", "KafkaConsumerLike", "KafkaDelivery", "KafkaSource"]

ID_HEADER = "interlace-id"


class KafkaConsumerLike(Protocol):
    """The part of ``AIOKafkaConsumer`` the source uses."""

    async def start(self) -> None: ...
    async def stop(self) -> None: ...
    def subscribe(self, topics: Collection[str], *, listener: Any) -> None: ...
    async def getmany(self, *, timeout_ms: int, max_records: int) -> dict[Any, list[Any]]: ...
    async def commit(self, offsets: dict[Any, int]) -> None: ...
    def seek(self, partition: Any, offset: int) -> None: ...


class KafkaDelivery(BrokerDelivery):
    def __init__(self, source: KafkaSource, tp: Any, handed: Handed, message: Message, **kw: Any) -> None:
        super().__init__(message, **kw)
        self._source = source
        self._tp = tp
        self._handed = handed

    async def _ack(self) -> None:
        await self._source.confirm(self._tp, self._handed)

    async def _nack(self, *, requeue: bool) -> None:
        if requeue:
            self._source.rewind(self._tp, self._handed.offset)
        else:
            await self._source.confirm(self._tp, self._handed)


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, partitions: dict[Any, PartitionOffsets]) -> None:
        self._partitions = partitions

    async def on_partitions_revoked(self, revoked: Collection[Any]) -> None:
        for tp in revoked:
            self._partitions.pop(tp, None)

    async def on_partitions_assigned(self, assigned: Collection[Any]) -> None:  # noqa: ARG002
        return None


def _default_consumer(config: KafkaSourceConfig) -> KafkaConsumerLike:
    consumer: KafkaConsumerLike = AIOKafkaConsumer(
        bootstrap_servers=config.bootstrap_servers,
        group_id=config.group_id,
        client_id=config.client_id or f"interlace-{config.group_id}",
        enable_auto_commit=False,
        auto_offset_reset=config.auto_offset_reset,
    )
    return consumer


class KafkaSource:
    def __init__(
        self,
        config: KafkaSourceConfig,
        _services: object = None,
        *,
        name: str | None = None,
        consumer_factory: Callable[[KafkaSourceConfig], KafkaConsumerLike] | None = None,
    ) -> None:
        self.name = name or f"kafka:{','.join(config.topics)}"
        self.config = config
        self._factory = consumer_factory or _default_consumer
        self._consumer: KafkaConsumerLike | None = None
        self._partitions: dict[Any, PartitionOffsets] = {}
        self._closing = asyncio.Event()

    async def start(self) -> None:
        consumer = self._factory(self.config)
        consumer.subscribe(self.config.topics, listener=_Rebalance(self._partitions))
        try:
            await consumer.start()
        except (OSError, KafkaError) as exc:
            raise ConfigError(
                f"flow source {self.name!r}: cannot reach Kafka at {self.config.bootstrap_servers}: {exc}"
            ) from exc
        self._consumer = consumer

    async def deliveries(self, *, max_in_flight: int) -> AsyncIterator[Delivery]:
        if self._consumer is None:
            raise RuntimeError("start() the source first")
        slots = Slots(max_in_flight)
        timeout_ms = int(self.config.poll_timeout * 1000)
        while not self._closing.is_set():
            free = await slots.wait_free()
            batches = await self._consumer.getmany(timeout_ms=timeout_ms, max_records=free)
            for tp, records in batches.items():
                offsets = self._partitions.setdefault(tp, PartitionOffsets())
                for record in records:
                    redelivered = record.offset <= offsets.high
                    handed = offsets.hand(record.offset)
                    slots.take()
                    message = self._message(record)
                    yield KafkaDelivery(self, tp, handed, message, redelivered=redelivered, slots=slots)

    async def confirm(self, tp: Any, handed: Handed) -> None:
        offsets = self._partitions.get(tp)
        commit = offsets.confirm(handed) if offsets is not None else None
        if commit is not None and self._consumer is not None:
            await self._consumer.commit({tp: commit})

    def rewind(self, tp: Any, offset: int) -> None:
        offsets = self._partitions.get(tp)
        if offsets is not None and self._consumer is not None:
            offsets.rewind(offset)
            self._consumer.seek(tp, offset)

    def _message(self, record: Any) -> Message:
        headers = header_map(dict(record.headers or ()))
        key = record.key.decode("utf-8", "replace") if isinstance(record.key, bytes) else record.key
        return Message(
            id=headers.pop(ID_HEADER, "") or f"{record.topic}:{record.partition}:{record.offset}",
            payload=decode_payload(record.value or b""),
            key=key,
            headers=headers,
            source=f"kafka:{record.topic}",
            position=str(record.offset),
        )

    async def aclose(self) -> None:
        self._closing.set()
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            await consumer.stop()
