"""RabbitMQ (AMQP 0-9-1): manual-ack queue source, publisher-confirmed sink.

Only the config models load with this package (listing connectors must not import the broker
client); the source and sink load on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

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

_LAZY = {
    "RabbitDelivery": "interlace.flows.connectors.rabbitmq.source",
    "RabbitSink": "interlace.flows.connectors.rabbitmq.sink",
    "RabbitSource": "interlace.flows.connectors.rabbitmq.source",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        msg = f"module {__name__!r} has no attribute {name!r}"
        raise AttributeError(msg)
    return getattr(importlib.import_module(module), name)
