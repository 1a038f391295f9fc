"""The YAML sections of a Kafka source and sink.

.. code-block:: yaml

    source:
      type: kafka
      bootstrap_servers: broker-1:9092,broker-2:9092
      topics: [orders]
      group_id: triage          # every `interlace flow run` joins the group (scale-out)

No Kafka broker runs in this project's test environment: the connector is tested at the client
boundary (fake ``AIOKafkaConsumer`` / ``AIOKafkaProducer`` objects), not against a real broker.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from interlace.config._flow_parts import ConnectorConfig

__all__ = ["KafkaSinkConfig", "KafkaSourceConfig"]


class KafkaSourceConfig(ConnectorConfig):
    type: Literal["kafka"] = "kafka"
    bootstrap_servers: str = "127.0.0.1:9092"
    """Comma-separated ``host:port`` list."""
    topics: list[str] = Field(min_length=1)
    group_id: str
    """The consumer group: processes sharing it share the partitions."""
    auto_offset_reset: Literal["earliest", "latest"] = "earliest"
    """Where a group without committed offsets starts."""
    poll_timeout: float = Field(default=1.0, gt=0)
    """Seconds one poll waits for records."""
    client_id: str | None = None


class KafkaSinkConfig(ConnectorConfig):
    type: Literal["kafka"] = "kafka"
    bootstrap_servers: str = "127.0.0.1:9092"
    topic: str
    timeout: float = Field(default=30.0, gt=0)
    """Seconds to wait for the acknowledgement of all in-sync replicas."""
    client_id: str | None = None
