"""The Postgres outbox source against the real server: id order, ack removes, crash re-claims,
concurrent readers share without duplicates, NOTIFY wakes the reader."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
from tests.support.flows_postgres import DSN, connect, schema_fixture

from interlace.flows.connectors.postgres.config import PostgresOutboxConfig
from interlace.flows.connectors.postgres.outbox import PostgresOutboxSource


@pytest.fixture
async def schema() -> AsyncIterator[str]:
    async for name in schema_fixture():
        yield name


def outbox(schema: str, **options: Any) -> PostgresOutboxConfig:
    return PostgresOutboxConfig(
        dsn=DSN, table=f"{schema}.outbox", create_table=True, poll_interval=0.05, **options
    )


async def insert(schema: str, count: int, *, start: int = 0, notify: str | None = None) -> None:
    async with await connect() as conn:
        for i in range(start, start + count):
            await conn.execute(
                f'INSERT INTO "{schema}".outbox (payload, key, headers) VALUES (%s::jsonb, %s, %s::jsonb)',
                (f'{{"n": {i}}}', f"k{i}", '{"traceparent": "00-abc"}'),
            )
        if notify:
            await conn.execute(f"NOTIFY {notify}")


async def remaining(schema: str) -> list[tuple[Any, ...]]:
    async with await connect() as conn:
        return await (
            await conn.execute(f'SELECT id, processed_at IS NOT NULL FROM "{schema}".outbox ORDER BY id')
        ).fetchall()


async def test_rows_come_in_id_order_and_leave_when_acked(schema: str) -> None:
    source = PostgresOutboxSource(outbox(schema))
    await source.start()
    try:
        await insert(schema, 5)
        stream = source.deliveries(max_in_flight=3)
        got = [await asyncio.wait_for(anext(stream), 10) for _ in range(3)]  # at most 3 in flight
        assert [d.message.payload for d in got] == [{"n": 0}, {"n": 1}, {"n": 2}]
        first = got[0].message
        assert first.key == "k0"
        assert first.headers == {"traceparent": "00-abc"}
        assert first.id == f"{schema}.outbox:{first.position}"
        for delivery in got:
            await delivery.ack()
        rest = [await asyncio.wait_for(anext(stream), 10) for _ in range(2)]
        assert [d.message.payload for d in rest] == [{"n": 3}, {"n": 4}]
        await rest[0].nack()  # requeued: stays in the table
        await rest[1].ack()
        again = await asyncio.wait_for(anext(stream), 10)
        assert again.message.payload == {"n": 3}
        await again.ack()
        await stream.aclose()
    finally:
        await source.aclose()
    assert await remaining(schema) == []


async def test_unacked_rows_are_claimed_again_after_a_crash(schema: str) -> None:
    first = PostgresOutboxSource(outbox(schema, on_ack="mark"))
    await first.start()
    await insert(schema, 3)
    stream = first.deliveries(max_in_flight=10)
    got = [await asyncio.wait_for(anext(stream), 10) for _ in range(3)]
    await got[0].ack()  # the batch's transaction is still open: nothing is committed yet
    await stream.aclose()
    await first.aclose()  # the open claim rolls back

    second = PostgresOutboxSource(outbox(schema, on_ack="mark"))
    await second.start()
    try:
        stream = second.deliveries(max_in_flight=10)
        again = [await asyncio.wait_for(anext(stream), 10) for _ in range(3)]
        assert [d.message.id for d in again] == [d.message.id for d in got]
        for delivery in again:
            await delivery.ack()
        await stream.aclose()
    finally:
        await second.aclose()
    assert [marked for _, marked in await remaining(schema)] == [True, True, True]  # on_ack: mark


async def test_concurrent_readers_share_without_duplicates(schema: str) -> None:
    total = 120
    config = outbox(schema, batch_size=7)
    readers = [PostgresOutboxSource(config) for i in range(3)]
    for reader in readers:
        await reader.start()
    await insert(schema, total)
    seen: list[list[int]] = [[] for _ in readers]
    acked = 0
    done = asyncio.Event()

    async def consume(index: int) -> None:
        nonlocal acked
        async for delivery in readers[index].deliveries(max_in_flight=10):
            seen[index].append(delivery.message.payload["n"])
            await asyncio.sleep(0)
            await delivery.ack()
            acked += 1
            if acked >= total:  # every ack returned: the readers may stop now
                done.set()

    tasks = [asyncio.create_task(consume(i)) for i in range(len(readers))]
    try:
        await asyncio.wait_for(done.wait(), 30)
    finally:
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for reader in readers:
            await reader.aclose()
    everything = [n for part in seen for n in part]
    assert sorted(everything) == list(range(total))  # each row exactly once
    assert sum(1 for part in seen if part) >= 2  # the work was shared
    for part in seen:
        assert part == sorted(part)  # each reader takes rows in id order
    assert await remaining(schema) == []


async def test_notify_wakes_the_reader(schema: str) -> None:
    config = PostgresOutboxConfig(
        dsn=DSN,
        table=f"{schema}.outbox",
        create_table=True,
        poll_interval=300,
        notify_channel=f"{schema}_wake",
    )
    source = PostgresOutboxSource(config)
    await source.start()
    try:
        stream = source.deliveries(max_in_flight=5)
        pending = asyncio.ensure_future(anext(stream))
        await asyncio.sleep(0.2)  # the reader found nothing and sleeps (poll_interval is 300 s)
        await insert(schema, 1, notify=f"{schema}_wake")
        delivery = await asyncio.wait_for(pending, 20)
        assert delivery.message.payload == {"n": 0}
        await delivery.ack()
        await stream.aclose()
    finally:
        await source.aclose()
