"""The YAML sections of a RabbitMQ source and sink.

.. code-block:: yaml

    source:
      type: rabbitmq
      url: amqp://guest:guest@127.0.0.1:5672/
      queue: tickets            # competing consumers: every `interlace flow run` reads it
      bind: {exchange: events, routing_key: ticket.*}
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from interlace.config._base import Strict
from interlace.config._flow_parts import ConnectorConfig

__all__ = ["RabbitBinding", "RabbitSinkConfig", "RabbitSourceConfig"]


class RabbitBinding(Strict):
    exchange: str
    """An existing exchange the queue is bound to."""
    routing_key: str = ""


class RabbitSourceConfig(ConnectorConfig):
    type: Literal["rabbitmq"] = "rabbitmq"
    url: str = "amqp://guest:guest@127.0.0.1:5672/"
    queue: str
    """The queue consumed with manual acks; prefetch (QoS) is the flow's max_in_flight."""
    declare: bool = True
    """Declare the queue (durable) when it does not exist; false requires it to exist."""
    bind: RabbitBinding | None = None
    """Bind the queue to an exchange."""


class RabbitSinkConfig(ConnectorConfig):
    type: Literal["rabbitmq"] = "rabbitmq"
    url: str = "amqp://guest:guest@127.0.0.1:5672/"
    exchange: str = ""
    """The exchange published to (``""``: the default exchange, routing key = queue name)."""
    routing_key: str
    timeout: float = Field(default=10.0, gt=0)
    """Seconds to wait for the broker's publisher confirm of one message."""
