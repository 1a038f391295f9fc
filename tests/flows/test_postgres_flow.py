"""Postgres end to end through the flow engine: CDC of one table → a step → the table sink.

Rows inserted, updated and deleted arrive in the sink; the flow is stopped part-way (changes made
while it is down) and restarted with a new source: each change is applied exactly once — nothing
skipped, nothing repeated (``flow_applied`` holds one id per change) — and the sink ends equal to the
source table.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest
from tests.support.flows_postgres import DSN, connect, drop_slot, require_logical, schema_fixture, unique

from interlace.config._flow_parts import RetryPolicy
from interlace.flows.connectors.postgres.cdc import PostgresCdcSource
from interlace.flows.connectors.postgres.config import PostgresCdcConfig, PostgresSinkConfig
from interlace.flows.connectors.postgres.sink import PostgresTableSink
from interlace.flows.engine import FlowEngine, StepSlot
from interlace.flows.message import Message
from interlace.flows.services import FlowServices
from interlace.flows.testing import MemorySink


class ChangeToRow:
    """A change becomes the sink's row: deletes are kept as tombstones."""

    name = "to-row"

    async def process(self, message: Message) -> Sequence[Message]:
        change = message.payload
        if change["op"] == "delete":  # a tombstone: the row keeps its last value
            return [message.derive({"id": change["key"]["id"], "deleted": True})]
        return [message.derive({"id": change["new"]["id"], "v": change["new"]["v"], "deleted": False})]


@pytest.fixture
async def schema() -> AsyncIterator[str]:
    async for name in schema_fixture():
        yield name


@pytest.fixture
async def setup(schema: str) -> AsyncIterator[PostgresCdcConfig]:
    slot = unique("flows_slot")
    async with await connect() as conn:
        await require_logical(conn)
        await conn.execute(f'CREATE TABLE "{schema}".src (id int PRIMARY KEY, v text)')
        await conn.execute(f'CREATE TABLE "{schema}".dst (id int PRIMARY KEY, v text, deleted bool)')
    config = PostgresCdcConfig(
        dsn=DSN,
        slot=slot,
        publication=slot,
        tables=[f"{schema}.src"],
        create_publication=True,
        poll_interval=0.05,
    )
    try:
        prepare = PostgresCdcSource(config)  # the slot exists before any change is made
        await prepare.start()
        await prepare.aclose()
        yield config
    finally:
        await drop_slot(slot)


def engine(schema: str, capture: PostgresCdcConfig, dead: MemorySink) -> FlowEngine:
    services = FlowServices(flow="mirror", part="sink:table")
    sink = PostgresTableSink(
        PostgresSinkConfig(dsn=DSN, table=f"{schema}.dst", key=["id"], state_schema=schema), services
    )
    return FlowEngine(
        "mirror",
        PostgresCdcSource(capture, services),
        [StepSlot(ChangeToRow(), RetryPolicy())],
        {"table": sink},
        dead_letter=dead,
        max_in_flight=16,
        ordering="key",
    )


async def changes(schema: str, first: int, count: int) -> None:
    """Per id: insert, update, and every third one deleted — one transaction each, some batched."""
    async with await connect() as conn:
        for i in range(first, first + count):
            await conn.execute(f"""INSERT INTO "{schema}".src VALUES ({i}, 'v{i}')""")
        async with conn.transaction():
            for i in range(first, first + count):
                await conn.execute(f"""UPDATE "{schema}".src SET v = 'w{i}' WHERE id = {i}""")
        for i in range(first, first + count, 3):
            await conn.execute(f'DELETE FROM "{schema}".src WHERE id = {i}')


def expected(count: int) -> list[tuple[Any, ...]]:
    return [(i, f"w{i}", i % 3 == 0) for i in range(count)]


async def sink_rows(schema: str) -> list[tuple[Any, ...]]:
    async with await connect() as conn:
        return await (await conn.execute(f'SELECT id, v, deleted FROM "{schema}".dst ORDER BY id')).fetchall()


async def wait_for_rows(schema: str, want: list[tuple[Any, ...]]) -> None:
    for _ in range(400):  # bounded: 20 s
        if await sink_rows(schema) == want:
            return
        await asyncio.sleep(0.05)
    assert await sink_rows(schema) == want


async def test_cdc_to_table_exactly_once_across_a_restart(schema: str, setup: PostgresCdcConfig) -> None:
    dead = MemorySink()
    first = engine(schema, setup, dead)
    stop = asyncio.Event()
    running = asyncio.create_task(first.run(stop))
    try:
        await changes(schema, 0, 30)
        await wait_for_rows(schema, expected(30))
    finally:
        stop.set()
        await running

    await changes(schema, 30, 30)  # while the flow is down
    second = engine(schema, setup, dead)
    stop = asyncio.Event()
    running = asyncio.create_task(second.run(stop))
    try:
        await wait_for_rows(schema, expected(60))
    finally:
        stop.set()
        await running
    assert dead.payloads == []
    total = 60 + 60 + 20  # inserts, updates, deletes
    async with await connect() as conn:
        row = await (
            await conn.execute(f"""SELECT count(*) FROM "{schema}".flow_applied WHERE flow = 'mirror'""")
        ).fetchone()
    assert row == (total,)
