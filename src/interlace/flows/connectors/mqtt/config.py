"""The YAML sections of an MQTT source and sink (MQTT 5).

.. code-block:: yaml

    source:
      type: mqtt
      host: 127.0.0.1
      topic: sensors/+/alerts
      client_id: interlace-alerts   # fixed: the broker keeps the session (and its queue) across restarts
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from interlace.config._flow_parts import ConnectorConfig

__all__ = ["MqttSinkConfig", "MqttSourceConfig"]


class MqttSourceConfig(ConnectorConfig):
    type: Literal["mqtt"] = "mqtt"
    host: str = "127.0.0.1"
    port: int = 1883
    topic: str
    """The topic filter subscribed to with QoS 1 (a shared subscription ``$share/<group>/<filter>``
    spreads messages over several processes)."""
    client_id: str
    """The fixed client id of the persistent session (clean start off)."""
    session_expiry: int = Field(default=86_400, ge=1)
    """Seconds the broker keeps the session (and queues QoS 1 messages) while the flow is down."""
    receive_maximum: int = Field(default=32, ge=1, le=65_535)
    """MQTT 5 Receive Maximum: the most unacknowledged messages the broker sends this client. Set it to
    the flow's max_in_flight so the broker holds the rest (the source never hands out more than
    max_in_flight either way; at most this many wait in memory)."""
    username: str | None = None


class MqttSinkConfig(ConnectorConfig):
    type: Literal["mqtt"] = "mqtt"
    host: str = "127.0.0.1"
    port: int = 1883
    topic: str
    """The topic published to, with QoS 1."""
    client_id: str | None = None
    timeout: float = Field(default=10.0, gt=0)
    """Seconds to wait for the broker's PUBACK of one message."""
    username: str | None = None
