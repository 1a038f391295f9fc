"""RabbitMQ (AMQP 0-9-1): manual-ack queue source, publisher-confirmed sink.

Only the config models load with this package (listing connectors must not import the broker
client); the source and sink load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from interlace.core.lazy import lazy_attributes
from interlace.flows.connectors.rabbitmq.config import RabbitBinding, RabbitSinkConfig, RabbitSourceConfig

if TYPE_CHECKING:
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

__getattr__ = lazy_attributes(
    __name__,
    {
        "RabbitDelivery": "interlace.flows.connectors.rabbitmq.source",
        "RabbitSink": "interlace.flows.connectors.rabbitmq.sink",
        "RabbitSource": "interlace.flows.connectors.rabbitmq.source",
    },
)
