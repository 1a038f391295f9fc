"""Kafka: consumer-group source with manual commits of contiguous confirmed offsets, acks=all sink.

Tested at the client boundary only (fake consumer and producer): no Kafka broker runs here.
"""

from __future__ import annotations

from interlace.flows.connectors.kafka.config import KafkaSinkConfig, KafkaSourceConfig
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
