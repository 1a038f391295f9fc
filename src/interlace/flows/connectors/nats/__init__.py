"""NATS JetStream: durable pull consumer source, JetStream-acked sink.

Only the config models load with this package (listing connectors must not import the broker
client); the source and sink load on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from interlace.flows.connectors.nats.config import NatsSinkConfig, NatsSourceConfig

if TYPE_CHECKING:
    from interlace.flows.connectors.nats.sink import NatsSink
    from interlace.flows.connectors.nats.source import NatsDelivery, NatsSource

__all__ = ["NatsDelivery", "NatsSink", "NatsSinkConfig", "NatsSource", "NatsSourceConfig"]

_LAZY = {
    "NatsDelivery": "interlace.flows.connectors.nats.source",
    "NatsSink": "interlace.flows.connectors.nats.sink",
    "NatsSource": "interlace.flows.connectors.nats.source",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        msg = f"module {__name__!r} has no attribute {name!r}"
        raise AttributeError(msg)
    return getattr(importlib.import_module(module), name)
