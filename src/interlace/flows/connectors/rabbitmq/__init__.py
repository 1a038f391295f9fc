"""RabbitMQ (AMQP 0-9-1): manual-ack queue source, publisher-confirmed sink."""

from __future__ import annotations

from interlace.flows.connectors.rabbitmq.config import RabbitBinding, RabbitSinkConfig, RabbitSourceConfig
from interlace.flows.connectors.rabbitmq.sink import RabbitSink
from interlace.flows.connectors.rabbitmq.source import RabbitDelivery, RabbitSource

__all__ = [
    "RabbitBinding",
    "RabbitDelivery",
    "RabbitSink",
    "RabbitSinkConfig",
    "RabbitSource",
    "RabbitSourceConfig",
]
