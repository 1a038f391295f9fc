"""The broker pairs the connector contract suite (tests/flows/contract) runs against.

One harness per source/sink pair.

A :class:`Pair` builds sources and sinks on fresh, uniquely named resources of the real service
(a JetStream stream, a RabbitMQ queue, a Redis stream, an MQTT topic and session) and removes them
afterwards. ``new_source()`` is another consumer of the same durable / queue / group / session — what a
restarted ``interlace flow run`` process is. Other connectors join the suite by adding a builder to
``BUILDERS``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import aio_pika
import aiomqtt
import nats
import redis.asyncio as aioredis
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from tests.support.brokers import AMQP_URL, MQTT_HOST, MQTT_PORT, NATS_URL, REDIS_URL, unique

from interlace.flows.connectors.mqtt import MqttSink, MqttSinkConfig, MqttSource, MqttSourceConfig
from interlace.flows.connectors.nats import NatsSink, NatsSinkConfig, NatsSource, NatsSourceConfig
from interlace.flows.connectors.rabbitmq import RabbitSink, RabbitSinkConfig, RabbitSource, RabbitSourceConfig
from interlace.flows.connectors.redis_streams import (
    RedisStreamSink,
    RedisStreamSinkConfig,
    RedisStreamSource,
    RedisStreamSourceConfig,
)
from interlace.flows.ports import Sink, Source


@dataclass
class Pair:
    kind: str
    new_source: Callable[[], Source]
    new_sink: Callable[[], Sink]
    unacked: Callable[[int], Awaitable[int]] | None
    """The broker's own count of messages handed out and not yet acknowledged, given how many were
    published (None: the broker does not show it)."""
    dedupes_by_id: bool
    """The sink writes a message id once (JetStream Nats-Msg-Id window, Redis marker)."""
    cleanup: Callable[[], Awaitable[None]]


async def _nats_pair() -> Pair:
    stream = unique("ILC_")
    subject = f"{stream.lower()}.events"
    source_config = NatsSourceConfig(
        url=NATS_URL,
        stream=stream,
        durable="flow",
        subjects=[subject],
        create_stream=True,
        ack_wait=1.0,
        fetch_timeout=0.2,
    )

    async def unacked(published: int) -> int:
        nc = await nats.connect(NATS_URL)
        try:
            info = await nc.jetstream().consumer_info(stream, "flow")
            return int(info.num_ack_pending or 0)
        finally:
            await nc.close()

    async def cleanup() -> None:
        nc = await nats.connect(NATS_URL)
        with contextlib.suppress(Exception):
            await nc.jetstream().delete_stream(stream)
        await nc.close()

    return Pair(
        kind="nats",
        new_source=lambda: NatsSource(source_config),
        new_sink=lambda: NatsSink(NatsSinkConfig(url=NATS_URL, subject=subject)),
        unacked=unacked,
        dedupes_by_id=True,
        cleanup=cleanup,
    )


async def _rabbit_pair() -> Pair:
    queue = unique("ilc-")

    async def unacked(published: int) -> int:
        connection = await aio_pika.connect(AMQP_URL)
        try:
            channel = await connection.channel()
            declared = await channel.declare_queue(queue, passive=True)
            ready = declared.declaration_result.message_count or 0
            return published - ready
        finally:
            await connection.close()

    async def cleanup() -> None:
        connection = await aio_pika.connect(AMQP_URL)
        channel = await connection.channel()
        await channel.queue_delete(queue)
        await connection.close()

    return Pair(
        kind="rabbitmq",
        new_source=lambda: RabbitSource(RabbitSourceConfig(url=AMQP_URL, queue=queue)),
        new_sink=lambda: RabbitSink(RabbitSinkConfig(url=AMQP_URL, routing_key=queue)),
        unacked=unacked,
        dedupes_by_id=False,
        cleanup=cleanup,
    )


async def _redis_pair() -> Pair:
    stream = unique("ilc:")
    source_config = RedisStreamSourceConfig(
        url=REDIS_URL, stream=stream, group="flow", consumer="c1", claim_idle=30, block=0.2
    )

    async def unacked(published: int) -> int:
        client = aioredis.Redis.from_url(REDIS_URL)
        try:
            summary = await client.xpending(stream, "flow")
            return int(summary["pending"])
        finally:
            await client.aclose()

    async def cleanup() -> None:
        client = aioredis.Redis.from_url(REDIS_URL)
        keys = [stream, *[k async for k in client.scan_iter(f"{stream}:*")]]
        await client.delete(*keys)
        await client.aclose()

    return Pair(
        kind="redis-streams",
        new_source=lambda: RedisStreamSource(source_config),
        new_sink=lambda: RedisStreamSink(RedisStreamSinkConfig(url=REDIS_URL, stream=stream)),
        unacked=unacked,
        dedupes_by_id=True,
        cleanup=cleanup,
    )


async def _mqtt_pair() -> Pair:
    topic = f"ilc/{unique('t')}/events"
    client_id = unique("ilc-")
    source_config = MqttSourceConfig(host=MQTT_HOST, port=MQTT_PORT, topic=topic, client_id=client_id)

    async def cleanup() -> None:
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = 0
        client = aiomqtt.Client(
            MQTT_HOST,
            MQTT_PORT,
            identifier=client_id,
            protocol=aiomqtt.ProtocolVersion.V5,
            clean_start=True,
            properties=props,
        )
        async with client:
            pass

    return Pair(
        kind="mqtt",
        new_source=lambda: MqttSource(source_config),
        new_sink=lambda: MqttSink(MqttSinkConfig(host=MQTT_HOST, port=MQTT_PORT, topic=topic)),
        unacked=None,
        dedupes_by_id=False,
        cleanup=cleanup,
    )


BUILDERS: dict[str, tuple[str, Callable[[], Awaitable[Pair]]]] = {
    "nats": ("nats", _nats_pair),
    "rabbitmq": ("rabbitmq", _rabbit_pair),
    "redis-streams": ("redis", _redis_pair),
    "mqtt": ("mqtt", _mqtt_pair),
}
