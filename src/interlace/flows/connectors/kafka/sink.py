"""Kafka sink: an idempotent producer with ``acks=all``.

``write`` returns when every in-sync replica has each record. The idempotent producer removes the
duplicates its own retries would cause; ``Message.id`` travels in the ``interlace-id`` header (and
``Message.key`` as the record key, so one key stays in one partition, in order) for consumers that
de-duplicate across redeliveries. ``producer_factory`` replaces ``aiokafka.AIOKafkaProducer`` (tests use
a fake: no Kafka broker runs in this project's test environment).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, Protocol

from aiokafka import AIOKafkaProducer  # type: ignore[import-untyped]
from aiokafka.errors import KafkaError  # type: ignore[import-untyped]

from interlace.core.errors import ConfigError
from interlace.flows.connectors._codec import encode_payload
from interlace.flows.connectors.kafka.source import ID_HEADER

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from interlace.flows.connectors.kafka.config import KafkaSinkConfig
    from interlace.flows.message import Message

__all__ = ["KafkaProducerLike", "KafkaSink"]


class KafkaProducerLike(Protocol):
    """The part of ``AIOKafkaProducer`` the sink uses."""

    async def start(self) -> None: ...
    async def stop(self) -> None: ...
    async def send_and_wait(
        self, topic: str, value: bytes, *, key: bytes | None, headers: list[tuple[str, bytes]]
    ) -> Any: ...


def _default_producer(config: KafkaSinkConfig) -> KafkaProducerLike:
    producer: KafkaProducerLike = AIOKafkaProducer(
        bootstrap_servers=config.bootstrap_servers,
        client_id=config.client_id,
        acks="all",
        enable_idempotence=True,
        request_timeout_ms=int(config.timeout * 1000),
    )
    return producer


class KafkaSink:
    def __init__(
        self,
        config: KafkaSinkConfig,
        _services: object = None,
        *,
        name: str | None = None,
        producer_factory: Callable[[KafkaSinkConfig], KafkaProducerLike] | None = None,
    ) -> None:
        self.name = name or f"kafka:{config.topic}"
        self.config = config
        self._factory = producer_factory or _default_producer
        self._producer: KafkaProducerLike | None = None

    async def start(self) -> None:
        producer = self._factory(self.config)
        try:
            await producer.start()
        except (OSError, KafkaError) as exc:
            raise ConfigError(
                f"flow sink {self.name!r}: cannot reach Kafka at {self.config.bootstrap_servers}: {exc}"
            ) from exc
        self._producer = producer

    async def write(self, messages: Sequence[Message]) -> None:
        if self._producer is None:
            raise RuntimeError("start() the sink first")
        producer = self._producer
        await asyncio.gather(
            *(
                producer.send_and_wait(
                    self.config.topic,
                    encode_payload(m.payload),
                    key=m.key.encode() if m.key is not None else None,
                    headers=[(ID_HEADER, m.id.encode()), *((k, v.encode()) for k, v in m.headers.items())],
                )
                for m in messages
            )
        )

    async def aclose(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            await producer.stop()
