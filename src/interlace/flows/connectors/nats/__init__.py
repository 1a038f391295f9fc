"""NATS JetStream: durable pull consumer source, JetStream-acked sink."""

from __future__ import annotations

from interlace.flows.connectors.nats.config import NatsSinkConfig, NatsSourceConfig
from interlace.flows.connectors.nats.sink import NatsSink
from interlace.flows.connectors.nats.source import NatsDelivery, NatsSource

__all__ = ["NatsDelivery", "NatsSink", "NatsSinkConfig", "NatsSource", "NatsSourceConfig"]
