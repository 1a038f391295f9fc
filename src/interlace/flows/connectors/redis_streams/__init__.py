"""Redis Streams: consumer-group source with pending-entry recovery, de-duplicating XADD sink.

Only the config models load with this package (listing connectors must not import the broker
client); the source and sink load on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

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

_LAZY = {
    "RedisStreamDelivery": "interlace.flows.connectors.redis_streams.source",
    "RedisStreamSink": "interlace.flows.connectors.redis_streams.sink",
    "RedisStreamSource": "interlace.flows.connectors.redis_streams.source",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        msg = f"module {__name__!r} has no attribute {name!r}"
        raise AttributeError(msg)
    return getattr(importlib.import_module(module), name)
