"""NATS JetStream: durable pull consumer source, JetStream-acked sink.

Only the config models load with this package (listing connectors must not import the broker
client); the source and sink load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from interlace.core.lazy import lazy_attributes
from interlace.flows.connectors.nats.config import NatsSinkConfig, NatsSourceConfig

if TYPE_CHECKING:
    from interlace.flows.connectors.nats.sink import NatsSink
    from interlace.flows.connectors.nats.source import NatsDelivery, NatsSource

__all__ = ["NatsDelivery", "NatsSink", "NatsSinkConfig", "NatsSource", "NatsSourceConfig"]

__getattr__ = lazy_attributes(
    __name__,
    {
        "NatsDelivery": "interlace.flows.connectors.nats.source",
        "NatsSink": "interlace.flows.connectors.nats.sink",
        "NatsSource": "interlace.flows.connectors.nats.source",
    },
)
