"""MQTT source: a QoS 1 subscription in a persistent session, acknowledged only after the sinks.

The client connects with MQTT 5, a fixed client id, clean start off and a session expiry, so the
broker keeps the subscription and queues messages while the flow is down. ``Receive Maximum`` is the
flow's max_in_flight: the broker never has more unacknowledged messages out to this client.

aiomqtt (2.5) has no manual acknowledgement of its own; paho-mqtt (≥ 2), which it wraps, does:
the source turns on paho's ``manual_ack`` on the wrapped client before connecting and sends each
PUBACK itself when the delivery is acked. A message never acked is redelivered (DUP flag set, which is
``redelivered``) when the session resumes. MQTT allows no redelivery within a connection, so a nack
with requeue hands the message out again from this process (still unacknowledged at the broker); a nack
without requeue acknowledges it (dropped).

``Message.id`` is the ``interlace-id`` user property the MQTT sink sets, else a digest of topic and
payload; ``key`` is the topic; the other user properties are the headers.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Any

import aiomqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from interlace.core.errors import ConfigError
from interlace.flows.connectors._codec import content_id, decode_payload
from interlace.flows.connectors._delivery import BrokerDelivery
from interlace.flows.connectors._slots import Slots
from interlace.flows.message import Delivery, Message

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from paho.mqtt.client import Client as PahoClient
    from paho.mqtt.client import MQTTMessage

    from interlace.flows.connectors.mqtt.config import MqttSourceConfig

__all__ = ["ID_PROPERTY", "MqttDelivery", "MqttSource"]

ID_PROPERTY = "interlace-id"


class MqttDelivery(BrokerDelivery):
    def __init__(self, source: MqttSource, incoming: aiomqtt.Message, message: Message, **kw: Any) -> None:
        super().__init__(message, **kw)
        self._source = source
        self.incoming = incoming

    async def _ack(self) -> None:
        self._source.puback(self.incoming)

    async def _nack(self, *, requeue: bool) -> None:
        if requeue:
            self._source.requeue(self.incoming)
        else:
            self._source.puback(self.incoming)


class MqttSource:
    def __init__(
        self, config: MqttSourceConfig, _services: object = None, *, name: str | None = None
    ) -> None:
        self.name = name or f"mqtt:{config.topic}"
        self.config = config
        self._client: aiomqtt.Client | None = None
        self._paho: PahoClient | None = None
        self._closing = asyncio.Event()
        self._dup: dict[int, bool] = {}
        self._inbox: asyncio.Queue[tuple[aiomqtt.Message, bool]] = asyncio.Queue()
        self._pumping: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Connect to the persistent session and subscribe (QoS 1): the broker queues from now on."""
        client = self._connect_client(self.config.receive_maximum)
        try:
            await client.__aenter__()
            await client.subscribe(self.config.topic, qos=1)
        except aiomqtt.MqttError as exc:
            cfg = self.config
            raise ConfigError(f"flow source {self.name!r}: MQTT at {cfg.host}:{cfg.port}: {exc}") from exc
        self._client = client
        self._pumping = asyncio.create_task(self._pump(client))

    def _connect_client(self, max_in_flight: int) -> aiomqtt.Client:
        cfg = self.config
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = cfg.session_expiry
        props.ReceiveMaximum = max_in_flight
        client = aiomqtt.Client(
            cfg.host,
            cfg.port,
            identifier=cfg.client_id,
            username=cfg.username,
            protocol=aiomqtt.ProtocolVersion.V5,
            clean_start=False,
            properties=props,
        )
        paho: PahoClient = client._client  # noqa: SLF001 - manual acks live on the wrapped paho client
        paho.manual_ack_set(on=True)
        inner = paho.on_message

        def on_message(c: PahoClient, userdata: Any, msg: MQTTMessage) -> None:
            self._dup[msg.mid] = bool(msg.dup)
            if inner is not None:
                inner(c, userdata, msg)

        paho.on_message = on_message
        self._paho = paho
        return client

    async def deliveries(self, *, max_in_flight: int) -> AsyncIterator[Delivery]:
        if self._client is None:
            raise RuntimeError("start() the source first")
        slots = Slots(max_in_flight)
        closing = asyncio.ensure_future(self._closing.wait())
        try:
            while True:
                await slots.wait_free()
                getting = asyncio.ensure_future(self._inbox.get())
                await asyncio.wait({getting, closing}, return_when=asyncio.FIRST_COMPLETED)
                if not getting.done():
                    getting.cancel()
                    return
                incoming, redelivered = getting.result()
                dup = self._dup.pop(incoming.mid, False)
                slots.take()
                message = self._message(incoming)
                yield MqttDelivery(self, incoming, message, redelivered=redelivered or dup, slots=slots)
        finally:
            closing.cancel()

    async def _pump(self, client: aiomqtt.Client) -> None:
        """Received messages into the inbox (the broker's Receive Maximum bounds how many wait)."""
        with contextlib.suppress(aiomqtt.MqttError):
            async for incoming in client.messages:
                self._inbox.put_nowait((incoming, False))

    def puback(self, incoming: aiomqtt.Message) -> None:
        if self._paho is not None and incoming.qos > 0:
            self._paho.ack(incoming.mid, incoming.qos)

    def requeue(self, incoming: aiomqtt.Message) -> None:
        self._inbox.put_nowait((incoming, True))

    def _message(self, incoming: aiomqtt.Message) -> Message:
        headers: dict[str, str] = {}
        for name, value in getattr(incoming.properties, "UserProperty", None) or []:
            headers[str(name)] = str(value)
        topic = incoming.topic.value
        data = bytes(incoming.payload)
        return Message(
            id=headers.pop(ID_PROPERTY, "") or content_id(topic, data),
            payload=decode_payload(data),
            key=topic,
            headers=headers,
            source=f"mqtt:{self.config.topic}",
        )

    async def aclose(self) -> None:
        """Disconnect: what was not acknowledged stays in the session and comes back, DUP set."""
        self._closing.set()
        if self._pumping is not None:
            self._pumping.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pumping
            self._pumping = None
        client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(aiomqtt.MqttError):
                await client.__aexit__(None, None, None)
