"""MQTT 5: persistent-session QoS 1 source with manual acks, PUBACK-awaited sink.

Only the config models load with this package (listing connectors must not import the broker
client); the source and sink load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from interlace.core.lazy import lazy_attributes
from interlace.flows.connectors.mqtt.config import MqttSinkConfig, MqttSourceConfig

if TYPE_CHECKING:
    from interlace.flows.connectors.mqtt.sink import MqttSink
    from interlace.flows.connectors.mqtt.source import MqttDelivery, MqttSource

__all__ = ["MqttDelivery", "MqttSink", "MqttSinkConfig", "MqttSource", "MqttSourceConfig"]

__getattr__ = lazy_attributes(
    __name__,
    {
        "MqttDelivery": "interlace.flows.connectors.mqtt.source",
        "MqttSink": "interlace.flows.connectors.mqtt.sink",
        "MqttSource": "interlace.flows.connectors.mqtt.source",
    },
)
