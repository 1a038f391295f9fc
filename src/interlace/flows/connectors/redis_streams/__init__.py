"""Redis Streams: consumer-group source with pending-entry recovery, de-duplicating XADD sink.

Only the config models load with this package (listing connectors must not import the broker
client); the source and sink load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from interlace.core.lazy import lazy_attributes
from interlace.flows.connectors.redis_streams.config import RedisStreamSinkConfig, RedisStreamSourceConfig

if TYPE_CHECKING:
    from interlace.flows.connectors.redis_streams.sink import RedisStreamSink
    from interlace.flows.connectors.redis_streams.source import RedisStreamDelivery, RedisStreamSource

__all__ = [
    "RedisStreamDelivery",
    "RedisStreamSink",
    "RedisStreamSinkConfig",
    "RedisStreamSource",
    "RedisStreamSourceConfig",
]

__getattr__ = lazy_attributes(
    __name__,
    {
        "RedisStreamDelivery": "interlace.flows.connectors.redis_streams.source",
        "RedisStreamSink": "interlace.flows.connectors.redis_streams.sink",
        "RedisStreamSource": "interlace.flows.connectors.redis_streams.source",
    },
)
