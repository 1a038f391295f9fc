"""Kafka: consumer-group source with manual commits of contiguous confirmed offsets, acks=all sink.

Tested at the client boundary only (fake consumer and producer): no Kafka broker runs here.

Only the config models load with this package (listing connectors must not import the broker
client); the source and sink load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from interlace.core.lazy import lazy_attributes
from interlace.flows.connectors.kafka.config import KafkaSinkConfig, KafkaSourceConfig

if TYPE_CHECKING:
    from interlace.flows.connectors.kafka.offsets import Handed, PartitionOffsets
    from interlace.flows.connectors.kafka.sink import KafkaProducerLike, KafkaSink
    from interlace.flows.connectors.kafka.source import KafkaConsumerLike, KafkaDelivery, KafkaSource

__all__ = [
    "Handed",
    "KafkaConsumerLike",
    "KafkaDelivery",
    "KafkaProducerLike",
    "KafkaSink",
    "KafkaSinkConfig",
    "KafkaSource",
    "KafkaSourceConfig",
    "PartitionOffsets",
]

__getattr__ = lazy_attributes(
    __name__,
    {
        "Handed": "interlace.flows.connectors.kafka.offsets",
        "KafkaConsumerLike": "interlace.flows.connectors.kafka.source",
        "KafkaDelivery": "interlace.flows.connectors.kafka.source",
        "KafkaProducerLike": "interlace.flows.connectors.kafka.sink",
        "KafkaSink": "interlace.flows.connectors.kafka.sink",
        "KafkaSource": "interlace.flows.connectors.kafka.source",
        "PartitionOffsets": "interlace.flows.connectors.kafka.offsets",
    },
)
