"""The YAML sections of a NATS JetStream source and sink.

.. code-block:: yaml

    source:
      type: nats
      url: nats://127.0.0.1:4222
      stream: ORDERS
      subjects: [orders.>]      # what the stream captures, when Interlace creates it
      create_stream: true
      durable: triage           # every `interlace flow run` of this flow shares it (scale-out)
      ack_wait: 30
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from interlace.config._flow_parts import ConnectorConfig

__all__ = ["NatsSinkConfig", "NatsSourceConfig"]


class NatsSourceConfig(ConnectorConfig):
    type: Literal["nats"] = "nats"
    url: str = "nats://127.0.0.1:4222"
    """The server (comma-separated for a cluster)."""
    stream: str
    """The JetStream stream to consume."""
    durable: str
    """The durable pull consumer's name: processes sharing it share the work."""
    subjects: list[str] = Field(default_factory=list)
    """The stream's subjects, used only when ``create_stream`` creates it."""
    create_stream: bool = False
    """Create the stream (file storage) when it does not exist."""
    filter_subject: str | None = None
    """Consume only these subjects of the stream."""
    ack_wait: float = Field(default=30.0, gt=0)
    """Seconds after which an unacknowledged message is redelivered."""
    max_ack_pending: int = Field(default=1000, ge=1)
    """The consumer's limit on unacknowledged messages over all processes (≥ the flow's max_in_flight)."""
    fetch_timeout: float = Field(default=1.0, gt=0)
    """Seconds one pull request waits for messages before asking again."""
    duplicate_window: float = Field(default=120.0, gt=0)
    """The created stream's de-duplication window (``Nats-Msg-Id``), in seconds."""


class NatsSinkConfig(ConnectorConfig):
    type: Literal["nats"] = "nats"
    url: str = "nats://127.0.0.1:4222"
    subject: str
    """The subject published to (a stream must capture it: the sink waits for the JetStream ack)."""
    timeout: float = Field(default=10.0, gt=0)
    """Seconds to wait for the JetStream ack of one message."""
