"""MQTT 5: persistent-session QoS 1 source with manual acks, PUBACK-awaited sink."""

from __future__ import annotations

from interlace.flows.connectors.mqtt.config import MqttSinkConfig, MqttSourceConfig
from interlace.flows.connectors.mqtt.sink import MqttSink
from interlace.flows.connectors.mqtt.source import MqttDelivery, MqttSource

__all__ = ["MqttDelivery", "MqttSink", "MqttSinkConfig", "MqttSource", "MqttSourceConfig"]
