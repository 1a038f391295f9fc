"""The Postgres table sink against the real server: upsert by key; replays never double-apply,
because the replay guard commits in the output's transaction."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from tests.support.flows_postgres import DSN, connect, schema_fixture

from interlace.core.errors import MessageRejected
from interlace.flows.connectors.postgres.config import PostgresSinkConfig
from interlace.flows.connectors.postgres.sink import PostgresTableSink, position_order
from interlace.flows.message import Message
from interlace.flows.services import FlowServices


@pytest.fixture
async def schema() -> AsyncIterator[str]:
    async for name in schema_fixture():
        async with await connect() as conn:
            await conn.execute(
                f'CREATE TABLE "{name}".out (id int PRIMARY KEY, label text, hits int NOT NULL DEFAULT 0, '
                "meta jsonb)"
            )
        yield name


def message(n: int, label: str, *, position: int | None = None, source: str = "src") -> Message:
    return Message(
        id=f"m{n}-{label}",
        payload={"id": n, "label": label, "meta": {"tags": [label]}},
        source=source,
        position=None if position is None else f"{position}.0",
    )


async def rows(schema: str) -> list[tuple[Any, ...]]:
    async with await connect() as conn:
        return await (
            await conn.execute(f'SELECT id, label, meta FROM "{schema}".out ORDER BY id')
        ).fetchall()


async def sink(schema: str, guard: str, flow: str = "f") -> PostgresTableSink:
    config = PostgresSinkConfig(
        dsn=DSN, table=f"{schema}.out", key=["id"], replay_guard=guard, state_schema=schema
    )
    built = PostgresTableSink(config, FlowServices(flow=flow, part="sink:pg"))
    await built.start()
    return built


async def test_upsert_by_key(schema: str) -> None:
    out = await sink(schema, "none")
    try:
        await out.write([message(1, "a"), message(2, "b")])
        await out.write([message(1, "c")])
    finally:
        await out.aclose()
    assert await rows(schema) == [(1, "c", {"tags": ["c"]}), (2, "b", {"tags": ["b"]})]


async def test_position_guard_skips_a_replay_even_of_an_older_version(schema: str) -> None:
    out = await sink(schema, "position")
    try:
        await out.write([message(1, "a", position=10), message(1, "b", position=11)])
        # a redelivery after a crash: the older version must not overwrite the newer one
        await out.write(
            [message(1, "a", position=10), message(1, "b", position=11), message(2, "x", position=12)]
        )
        await out.write([message(1, "late", position=9)])
    finally:
        await out.aclose()
    assert await rows(schema) == [(1, "b", {"tags": ["b"]}), (2, "x", {"tags": ["x"]})]
    async with await connect() as conn:
        stored = await (
            await conn.execute(f'SELECT flow, source, position FROM "{schema}".flow_positions')
        ).fetchall()
    assert stored == [("f", "src", "12.0")]


async def test_id_guard_skips_what_was_applied_and_rolls_back_with_the_output(schema: str) -> None:
    out = await sink(schema, "id")
    try:
        await out.write([message(1, "a"), message(1, "b")])
        await out.write([message(1, "a")])  # replayed id: not applied again, the row keeps "b"
        assert await rows(schema) == [(1, "b", {"tags": ["b"]})]
        bad = Message(id="broken", payload={"id": 3, "nope": 1}, source="src")
        with pytest.raises(MessageRejected, match=r"UndefinedColumn.*nope"):
            await out.write([message(2, "x"), bad])  # the whole transaction rolls back …
        await out.write([message(2, "x")])  # … so the id was not recorded, and the retry applies it
    finally:
        await out.aclose()
    assert await rows(schema) == [(1, "b", {"tags": ["b"]}), (2, "x", {"tags": ["x"]})]


async def test_applied_ids_older_than_the_retention_are_pruned(schema: str) -> None:
    config = PostgresSinkConfig(
        dsn=DSN, table=f"{schema}.out", key=["id"], state_schema=schema, applied_retention=3600
    )
    out = PostgresTableSink(config, FlowServices(flow="f"))
    await out.start()
    try:
        await out.write([message(1, "a"), message(2, "b")])
        async with await connect() as conn:
            await conn.execute(
                f"UPDATE \"{schema}\".flow_applied SET applied_at = now() - interval '2 hours' "
                "WHERE message_id = 'm1-a'"
            )
        assert await out.prune() == 1
        await out.write([message(1, "a"), message(2, "b")])  # m1-a is applied again, m2-b still skipped
    finally:
        await out.aclose()
    async with await connect() as conn:
        ids = await (
            await conn.execute(f'SELECT message_id FROM "{schema}".flow_applied ORDER BY 1')
        ).fetchall()
    assert ids == [("m1-a",), ("m2-b",)]


async def test_guards_are_per_flow_and_source(schema: str) -> None:
    one, two = await sink(schema, "position", flow="one"), await sink(schema, "position", flow="two")
    try:
        await one.write([message(1, "a", position=5)])
        await two.write([message(2, "b", position=3)])  # another flow: its own position
        await one.write([message(3, "c", position=1, source="other")])  # another source of the same flow
    finally:
        await one.aclose()
        await two.aclose()
    assert [r[0] for r in await rows(schema)] == [1, 2, 3]


async def test_position_guard_needs_positions(schema: str) -> None:
    out = await sink(schema, "position")
    try:
        with pytest.raises(MessageRejected, match="replay_guard: id"):
            await out.write([message(1, "a")])
    finally:
        await out.aclose()


def test_positions_compare_by_their_numbers() -> None:
    assert position_order("9") < position_order("10")
    assert position_order("1700000000000-3") < position_order("1700000000000-12")
    assert position_order("1244793984.2") < position_order("1244793985.0")


async def test_concurrent_writes_commit_together_and_all_apply(schema: str) -> None:
    out = await sink(schema, "id")
    try:
        await asyncio.gather(*(out.write([message(n, "a"), message(n + 100, "b")]) for n in range(20)))
    finally:
        await out.aclose()
    assert len(await rows(schema)) == 40
    async with await connect() as conn:
        count = await (await conn.execute(f'SELECT count(*) FROM "{schema}".flow_applied')).fetchone()
    assert count == (40,)


async def test_a_refused_row_in_a_group_fails_only_its_own_write(schema: str) -> None:
    out = await sink(schema, "id")
    bad = Message(id="bad", payload={"id": "not a number"}, source="src")
    try:
        results = await asyncio.gather(
            *(out.write([message(n, "a")]) for n in range(10)),
            out.write([bad]),
            *(out.write([message(n, "b")]) for n in range(10, 20)),
            return_exceptions=True,
        )
    finally:
        await out.aclose()
    refused = [r for r in results if isinstance(r, BaseException)]
    assert len(refused) == 1
    assert isinstance(refused[0], MessageRejected)
    assert [r[0] for r in await rows(schema)] == list(range(20))  # every other write applied once
    async with await connect() as conn:
        count = await (await conn.execute(f'SELECT count(*) FROM "{schema}".flow_applied')).fetchone()
    assert count == (20,)  # and the refused message is not recorded as applied


@pytest.mark.parametrize(
    ("payload", "error"),
    [
        (["not", "an", "object"], "must be an object"),
        ({"label": "no id"}, "key field"),
        ({"id": "x"}, "invalid input syntax"),
    ],
)
async def test_what_the_table_cannot_take_is_rejected_for_good(schema: str, payload: Any, error: str) -> None:
    out = await sink(schema, "id")
    try:
        with pytest.raises(MessageRejected, match=error):
            await out.write([Message(id="bad", payload=payload, source="src")])
        await out.write([message(1, "a")])  # the sink still works, and "bad" was not recorded
    finally:
        await out.aclose()
    assert [r[0] for r in await rows(schema)] == [1]
