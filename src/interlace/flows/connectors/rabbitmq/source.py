"""RabbitMQ source: a queue consumed with manual acks and prefetch = max_in_flight.

The broker's QoS holds back what the flow cannot take. ``Message.id`` is the AMQP ``message_id``
when the publisher set one, else a digest of the body; ``redelivered`` is AMQP's flag. A nack with
requeue puts the message back on the queue; without requeue it is rejected (to the queue's
dead-letter exchange, when it has one).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING

import aio_pika
from aio_pika.exceptions import AMQPError

from interlace.core.errors import ConfigError
from interlace.flows.connectors._codec import content_id, decode_payload
from interlace.flows.connectors._delivery import BrokerDelivery
from interlace.flows.connectors._slots import Slots
from interlace.flows.message import Delivery, Message, header_map

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from aio_pika.abc import AbstractIncomingMessage, AbstractQueue, AbstractRobustConnection

    from interlace.flows.connectors.rabbitmq.config import RabbitSourceConfig

__all__ = ["RabbitDelivery", "RabbitSource"]


class RabbitDelivery(BrokerDelivery):
    def __init__(self, incoming: AbstractIncomingMessage, message: Message, *, slots: Slots) -> None:
        super().__init__(message, redelivered=bool(incoming.redelivered), slots=slots)
        self._incoming = incoming

    async def _ack(self) -> None:
        await self._incoming.ack()

    async def _nack(self, *, requeue: bool) -> None:
        await self._incoming.nack(requeue=requeue)


class RabbitSource:
    def __init__(
        self, config: RabbitSourceConfig, _services: object = None, *, name: str | None = None
    ) -> None:
        self.name = name or f"rabbitmq:{config.queue}"
        self.config = config
        self._connection: AbstractRobustConnection | None = None
        self._closing = asyncio.Event()

    async def start(self) -> None:
        cfg = self.config
        try:
            self._connection = await aio_pika.connect_robust(cfg.url, timeout=5)
            channel = await self._connection.channel()
            queue: AbstractQueue
            if cfg.declare:
                queue = await channel.declare_queue(cfg.queue, durable=True)
            else:
                queue = await channel.get_queue(cfg.queue, ensure=True)
            if cfg.bind is not None:
                await queue.bind(cfg.bind.exchange, routing_key=cfg.bind.routing_key)
            await channel.close()
        except (OSError, AMQPError) as exc:
            await self.aclose()
            raise ConfigError(f"flow source {self.name!r}: RabbitMQ queue {cfg.queue!r}: {exc}") from exc

    async def deliveries(self, *, max_in_flight: int) -> AsyncIterator[Delivery]:
        if self._connection is None:
            raise RuntimeError("start() the source first")
        slots = Slots(max_in_flight)
        channel = await self._connection.channel()
        await channel.set_qos(prefetch_count=max_in_flight)
        queue = await channel.get_queue(self.config.queue, ensure=False)
        inbox: asyncio.Queue[AbstractIncomingMessage] = asyncio.Queue()
        tag = await queue.consume(inbox.put, no_ack=False)
        closing = asyncio.ensure_future(self._closing.wait())
        try:
            while True:
                getting = asyncio.ensure_future(inbox.get())
                await asyncio.wait({getting, closing}, return_when=asyncio.FIRST_COMPLETED)
                if not getting.done():
                    getting.cancel()
                    return
                incoming = getting.result()
                slots.take()
                yield RabbitDelivery(incoming, self._message(incoming), slots=slots)
        finally:
            closing.cancel()
            if not channel.is_closed:
                with contextlib.suppress(AMQPError, asyncio.CancelledError):
                    await queue.cancel(tag)

    def _message(self, incoming: AbstractIncomingMessage) -> Message:
        headers = header_map(incoming.headers)
        return Message(
            id=incoming.message_id or content_id(self.config.queue, incoming.body),
            payload=decode_payload(incoming.body),
            key=incoming.routing_key,
            headers=headers,
            source=f"rabbitmq:{self.config.queue}",
        )

    async def aclose(self) -> None:
        self._closing.set()
        if self._connection is not None and not self._connection.is_closed:
            await self._connection.close()
        self._connection = None
