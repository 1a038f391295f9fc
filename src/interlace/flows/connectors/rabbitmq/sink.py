"""RabbitMQ sink: persistent messages, each awaited until the broker's publisher confirm.

Published ``mandatory``: a message no queue takes is an error, not a silent drop. ``message_id`` is
``Message.id`` and the headers are carried, so a consumer downstream can de-duplicate.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import aio_pika
from aio_pika.exceptions import AMQPError

from interlace.core.errors import ConfigError
from interlace.flows.connectors._codec import encode_payload

if TYPE_CHECKING:
    from collections.abc import Sequence

    from aio_pika.abc import AbstractExchange, AbstractRobustConnection

    from interlace.flows.connectors.rabbitmq.config import RabbitSinkConfig
    from interlace.flows.message import Message

__all__ = ["RabbitSink"]


class RabbitSink:
    def __init__(
        self, config: RabbitSinkConfig, _services: object = None, *, name: str | None = None
    ) -> None:
        self.name = name or f"rabbitmq:{config.routing_key}"
        self.config = config
        self._connection: AbstractRobustConnection | None = None
        self._exchange: AbstractExchange | None = None

    async def start(self) -> None:
        cfg = self.config
        try:
            self._connection = await aio_pika.connect_robust(cfg.url, timeout=5)
            channel = await self._connection.channel(publisher_confirms=True)
            if cfg.exchange:
                self._exchange = await channel.get_exchange(cfg.exchange, ensure=True)
            else:
                self._exchange = channel.default_exchange
        except (OSError, AMQPError) as exc:
            await self.aclose()
            raise ConfigError(f"flow sink {self.name!r}: RabbitMQ exchange {cfg.exchange!r}: {exc}") from exc

    async def write(self, messages: Sequence[Message]) -> None:
        if self._exchange is None:
            raise RuntimeError("start() the sink first")
        exchange = self._exchange
        await asyncio.gather(
            *(
                exchange.publish(
                    aio_pika.Message(
                        encode_payload(m.payload),
                        headers=dict(m.headers),
                        message_id=m.id,
                        content_type="application/json",
                        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                    ),
                    routing_key=self.config.routing_key,
                    mandatory=True,
                    timeout=self.config.timeout,
                )
                for m in messages
            )
        )

    async def aclose(self) -> None:
        if self._connection is not None and not self._connection.is_closed:
            await self._connection.close()
        self._connection = None
        self._exchange = None
