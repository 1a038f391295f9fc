"""Redis Streams: consumer-group source with pending-entry recovery, de-duplicating XADD sink."""

from __future__ import annotations

from interlace.flows.connectors.redis_streams.config import RedisStreamSinkConfig, RedisStreamSourceConfig
from interlace.flows.connectors.redis_streams.sink import RedisStreamSink
from interlace.flows.connectors.redis_streams.source import RedisStreamDelivery, RedisStreamSource

__all__ = [
    "RedisStreamDelivery",
    "RedisStreamSink",
    "RedisStreamSinkConfig",
    "RedisStreamSource",
    "RedisStreamSourceConfig",
]
