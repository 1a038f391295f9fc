"""The connector pairs the connector contract suite (tests/flows/contract) runs against.

One harness per source/sink pair, each on its real service on 127.0.0.1.

A :class:`Pair` builds sources and sinks on fresh, uniquely named resources (a JetStream stream, a
RabbitMQ queue, a Redis stream, an MQTT topic and session, a state database, a directory, a Postgres
schema and slot, an HTTP receiver) and removes them afterwards. ``new_source()`` is another consumer of
the same durable / queue / group / session / inbox / table — what a restarted ``interlace flow run``
process is. Connectors differ in what they promise; the capability fields of :class:`Pair` say what,
and the contract asserts exactly that (a weaker promise is still asserted, never skipped).

For a broker, the sink feeds the source. For the others, ``publish`` puts messages into the source
the way its producers do (the webhook inbox, a file, an outbox row, a table row) and ``stored`` reads
back what the pair's sink wrote. Other connectors join the suite by adding a :class:`Builder` to
``BUILDERS`` (the brokers here, the rest in :mod:`tests.support.connector_pairs_local`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Literal

import aio_pika
import aiomqtt
import nats
import redis.asyncio as aioredis
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from tests.support.brokers import (
    AMQP_URL,
    MQTT_HOST,
    MQTT_PORT,
    NATS_URL,
    REDIS_URL,
    require_broker,
    unique,
)

from interlace.flows.connectors.mqtt import MqttSink, MqttSinkConfig, MqttSource, MqttSourceConfig
from interlace.flows.connectors.nats import NatsSink, NatsSinkConfig, NatsSource, NatsSourceConfig
from interlace.flows.connectors.rabbitmq import RabbitSink, RabbitSinkConfig, RabbitSource, RabbitSourceConfig
from interlace.flows.connectors.redis_streams import (
    RedisStreamSink,
    RedisStreamSinkConfig,
    RedisStreamSource,
    RedisStreamSourceConfig,
)
from interlace.flows.message import Message
from interlace.flows.ports import Sink, Source

SinkHeaders = Literal["all", "trace", "none"]


def as_sent(message: Message) -> Message:
    return message


@dataclass(kw_only=True)
class Pair:
    kind: str
    cleanup: Callable[[], Awaitable[None]]
    new_source: Callable[[], Source] | None = None
    """None: a sink-only connector."""
    new_sink: Callable[[], Sink] | None = None
    publish: Callable[[Sequence[Message]], Awaitable[None]] | None = None
    """Put messages into the source's input as its producers do (None: through ``new_sink``)."""
    stored: Callable[[], Awaitable[list[Message]]] | None = None
    """What the sink wrote, oldest first, as sent (None: read back through ``new_source``)."""
    unwrap: Callable[[Message], Message] = as_sent
    """A received message as the producer sent it (id, payload, headers): sources that choose their
    own ids or wrap the payload (a file line, an outbox row, a row change) carry the sent id in it."""
    unacked: Callable[[int], Awaitable[int]] | None = None
    """The broker's own count of messages handed out and not yet acknowledged, given how many were
    published (None: the service does not show it)."""
    dedupes_by_id: bool = False
    """The sink writes a message id once (JetStream Nats-Msg-Id window, Redis marker, event-log key,
    Postgres replay guard)."""
    producer_ids: bool = True
    """The source's ``Message.id`` is the producer's id (False: a position such as ``file:line``)."""
    redelivered_after_crash: bool = True
    """A message handed out before a crash comes back flagged ``redelivered``."""
    redelivered_after_nack: bool = True
    """A nacked message comes back flagged ``redelivered``."""
    source_headers: bool = True
    """Headers given to the producer arrive on the source's messages."""
    sink_headers: SinkHeaders = "all"
    """Which headers the sink keeps: all, only the trace context, none."""
    ordered: bool = True
    """One producer, one consumer: messages arrive in publication order."""


@dataclass(frozen=True)
class Builder:
    require: Callable[[], None]
    """Skip (outside CI) or fail (CI=true) when the service is unreachable."""
    build: Callable[[Path], Awaitable[Pair]]
    """A pair on fresh resources (the argument is the test's own temporary directory)."""
    roles: frozenset[str] = field(default_factory=lambda: frozenset({"source", "sink"}))


async def _nats_pair(tmp: Path) -> Pair:
    del tmp
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


async def _rabbit_pair(tmp: Path) -> Pair:
    del tmp
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


async def _redis_pair(tmp: Path) -> Pair:
    del tmp
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


async def _mqtt_pair(tmp: Path) -> Pair:
    del tmp
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
        cleanup=cleanup,
    )


BROKERS: dict[str, Builder] = {
    "nats": Builder(partial(require_broker, "nats"), _nats_pair),
    "rabbitmq": Builder(partial(require_broker, "rabbitmq"), _rabbit_pair),
    "redis-streams": Builder(partial(require_broker, "redis"), _redis_pair),
    "mqtt": Builder(partial(require_broker, "mqtt"), _mqtt_pair),
}
