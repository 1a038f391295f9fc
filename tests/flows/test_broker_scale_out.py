"""Scale-out on the brokers' own consumer groups: two consumers share the work without duplicates,
and when one stops, what it held unacknowledged goes to the other.

On NATS JetStream (two pullers of one durable consumer: ack_wait hands a dead puller's messages on)
and Redis Streams (two consumers of one group: XAUTOCLAIM takes over a dead consumer's entries).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import nats
import pytest
import redis.asyncio as aioredis
from tests.support.brokers import NATS_URL, REDIS_URL, require_broker, unique

from interlace.flows.connectors.nats import NatsSink, NatsSinkConfig, NatsSource, NatsSourceConfig
from interlace.flows.connectors.redis_streams import (
    RedisStreamSink,
    RedisStreamSinkConfig,
    RedisStreamSource,
    RedisStreamSourceConfig,
)
from interlace.flows.message import Delivery, Message
from interlace.flows.ports import Sink, Source


@dataclass
class Group:
    consumer: Callable[[str], Source]
    """A new member of the group (the argument names it, where the broker wants a name)."""
    sink: Sink


@pytest.fixture(params=["nats", "redis-streams"])
async def group(request: pytest.FixtureRequest) -> AsyncIterator[Group]:
    if request.param == "nats":
        require_broker("nats")
        stream = unique("ILS_")
        subject = f"{stream.lower()}.in"
        config = NatsSourceConfig(
            url=NATS_URL,
            stream=stream,
            durable="workers",
            subjects=[subject],
            create_stream=True,
            ack_wait=2.0,
            fetch_timeout=0.2,
        )
        yield Group(lambda _name: NatsSource(config), NatsSink(NatsSinkConfig(url=NATS_URL, subject=subject)))
        nc = await nats.connect(NATS_URL)
        with contextlib.suppress(Exception):
            await nc.jetstream().delete_stream(stream)
        await nc.close()
    else:
        require_broker("redis")
        key = unique("ils:")

        def member(name: str) -> Source:
            return RedisStreamSource(
                RedisStreamSourceConfig(
                    url=REDIS_URL,
                    stream=key,
                    group="workers",
                    consumer=name,
                    claim_idle=1.0,
                    claim_interval=0.2,
                    block=0.1,
                )
            )

        yield Group(member, RedisStreamSink(RedisStreamSinkConfig(url=REDIS_URL, stream=key)))
        client = aioredis.Redis.from_url(REDIS_URL)
        await client.delete(key, *[k async for k in client.scan_iter(f"{key}:*")])
        await client.aclose()


async def _next(it: AsyncIterator[Delivery]) -> Delivery:
    return await anext(it)


async def test_two_consumers_share_the_work_and_a_stopped_ones_messages_move_over(group: Group) -> None:
    first, second = group.consumer("a"), group.consumer("b")
    await first.start()  # creates the stream / durable / group before anything is published
    sent = [Message(id=f"s-{i}", payload={"i": i}) for i in range(20)]
    await group.sink.start()
    await group.sink.write(sent)
    await group.sink.aclose()

    first_it = first.deliveries(max_in_flight=2)
    held = [await _next(first_it), await _next(first_it)]  # all it may take: it acks none of them
    held_ids = {d.message.id for d in held}

    await second.start()
    second_it = second.deliveries(max_in_flight=4)
    acked: list[str] = []
    for _ in range(len(sent) - len(held)):
        delivery = await _next(second_it)
        acked.append(delivery.message.id)
        await delivery.ack()
    assert not held_ids & set(acked)  # shared, without duplicates
    assert len(set(acked)) == len(acked)

    await first_it.aclose()  # type: ignore[attr-defined]
    await first.aclose()  # stopped with two messages unacknowledged
    for _ in held:
        delivery = await _next(second_it)
        assert delivery.message.id in held_ids
        assert delivery.redelivered
        acked.append(delivery.message.id)
        await delivery.ack()

    assert sorted(acked) == sorted(m.id for m in sent)  # each exactly once
    await second_it.aclose()  # type: ignore[attr-defined]
    await second.aclose()
