"""MQTT sink: QoS 1 publishes, each awaited until the broker's PUBACK.

``Message.id`` travels as the ``interlace-id`` user property and the headers as user properties, so an
MQTT source downstream gets both back.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING

import aiomqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from interlace.core.errors import ConfigError
from interlace.flows.connectors._codec import encode_payload
from interlace.flows.connectors.mqtt.source import ID_PROPERTY

if TYPE_CHECKING:
    from collections.abc import Sequence

    from interlace.flows.connectors.mqtt.config import MqttSinkConfig
    from interlace.flows.message import Message

__all__ = ["MqttSink"]


class MqttSink:
    def __init__(self, config: MqttSinkConfig, _services: object = None, *, name: str | None = None) -> None:
        self.name = name or f"mqtt:{config.topic}"
        self.config = config
        self._client: aiomqtt.Client | None = None

    async def start(self) -> None:
        cfg = self.config
        client = aiomqtt.Client(
            cfg.host,
            cfg.port,
            identifier=cfg.client_id,
            username=cfg.username,
            protocol=aiomqtt.ProtocolVersion.V5,
        )
        try:
            await client.__aenter__()
        except aiomqtt.MqttError as exc:
            raise ConfigError(
                f"flow sink {self.name!r}: cannot connect to MQTT at {cfg.host}:{cfg.port}: {exc}"
            ) from exc
        self._client = client

    async def write(self, messages: Sequence[Message]) -> None:
        if self._client is None:
            raise RuntimeError("start() the sink first")
        client = self._client
        await asyncio.gather(
            *(
                client.publish(
                    self.config.topic,
                    encode_payload(m.payload),
                    qos=1,
                    properties=_properties(m),
                    timeout=self.config.timeout,
                )
                for m in messages
            )
        )

    async def aclose(self) -> None:
        if self._client is not None:
            with contextlib.suppress(aiomqtt.MqttError):
                await self._client.__aexit__(None, None, None)
        self._client = None


def _properties(message: Message) -> Properties:
    props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
    props.UserProperty = [(ID_PROPERTY, message.id), *message.headers.items()]
    return props
