"""Postgres change data capture through pgoutput, against the real server (wal_level=logical).

Rows inserted, updated and deleted appear in commit order; the slot advances only past transactions
whose every change was acknowledged, so after a restart nothing is skipped, and what was not confirmed
comes again with the same ids (an idempotent sink drops it).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
from tests.support.flows_postgres import DSN, connect, drop_slot, require_logical, schema_fixture, unique

from interlace.core.errors import ConfigError
from interlace.flows.connectors.postgres.cdc import PostgresCdcSource
from interlace.flows.connectors.postgres.config import PostgresCdcConfig
from interlace.flows.message import Delivery
from interlace.flows.services import FlowServices


@pytest.fixture
async def schema() -> AsyncIterator[str]:
    async for name in schema_fixture():
        yield name


@pytest.fixture
async def capture(schema: str) -> AsyncIterator[PostgresCdcConfig]:
    """A table ``<schema>.t`` and a CDC config for it; the slot and publication are dropped afterwards."""
    slot = unique("flows_slot")
    async with await connect() as conn:
        await require_logical(conn)
        await conn.execute(f'CREATE TABLE "{schema}".t (id int PRIMARY KEY, v text, n numeric, j jsonb)')
    config = PostgresCdcConfig(
        dsn=DSN,
        slot=slot,
        publication=slot,
        tables=[f"{schema}.t"],
        create_publication=True,
        poll_interval=0.05,
    )
    try:
        yield config
    finally:
        await drop_slot(slot)


async def run_sql(*statements: str) -> None:
    """Each statement in its own transaction (autocommit)."""
    async with await connect() as conn:
        for statement in statements:
            await conn.execute(statement)


async def take(
    source: PostgresCdcSource, count: int, *, max_in_flight: int = 100
) -> tuple[Any, list[Delivery]]:
    stream = source.deliveries(max_in_flight=max_in_flight)
    got = [await asyncio.wait_for(anext(stream), 20) for _ in range(count)]
    return stream, got


def summary(delivery: Delivery) -> tuple[str, Any]:
    payload = delivery.message.payload
    row = payload.get("new") or payload.get("key")
    return payload["op"], row


async def test_changes_arrive_in_commit_order_with_typed_values(
    schema: str, capture: PostgresCdcConfig
) -> None:
    source = PostgresCdcSource(capture)
    await source.start()
    t = f'"{schema}".t'
    try:
        await run_sql(
            f"""INSERT INTO {t} VALUES (1, 'a', 1.50, '{{"x": [1, 2]}}'), (2, 'b', NULL, NULL)""",
            f"UPDATE {t} SET v = 'c' WHERE id = 1",
            f"DELETE FROM {t} WHERE id = 2",
            f"INSERT INTO {t} (id, v) VALUES (3, 'd')",
        )
        stream, got = await take(source, 5)
        assert [summary(d) for d in got] == [
            ("insert", {"id": 1, "v": "a", "n": "1.50", "j": {"x": [1, 2]}}),
            ("insert", {"id": 2, "v": "b", "n": None, "j": None}),
            ("update", {"id": 1, "v": "c", "n": "1.50", "j": {"x": [1, 2]}}),
            ("delete", {"id": 2}),
            ("insert", {"id": 3, "v": "d", "n": None, "j": None}),
        ]
        first = got[0].message
        assert first.payload["table"] == f"{schema}.t"
        assert first.payload["key"] == {"id": 1}
        assert first.key == f"{schema}.t:1"
        assert first.source == f"postgres-cdc:{capture.slot}"
        assert first.payload["commit_ts"].endswith("+00:00")
        assert isinstance(first.payload["xid"], int)
        assert first.id == f"{first.payload['lsn']}/0"
        assert got[1].message.id == f"{first.payload['lsn']}/1"
        positions = [tuple(int(p) for p in (d.message.position or "").split(".")) for d in got]
        assert positions == sorted(positions)
        assert len(set(positions)) == 5
        for delivery in got:
            await delivery.ack()
        await stream.aclose()
    finally:
        await source.aclose()
    # everything was acknowledged: the slot moved past all of it
    async with await connect() as conn:
        row = await (
            await conn.execute(
                "SELECT count(*) FROM pg_logical_slot_peek_binary_changes(%s, NULL, NULL, "
                "'proto_version', '1', 'publication_names', %s)",
                (capture.slot, capture.publication),
            )
        ).fetchone()
        assert row == (0,)


async def test_restart_skips_nothing_and_repeats_only_unconfirmed(
    schema: str, capture: PostgresCdcConfig
) -> None:
    t = f'"{schema}".t'
    first = PostgresCdcSource(capture)
    await first.start()
    await run_sql(
        f"INSERT INTO {t} (id, v) VALUES (1, 'a'), (2, 'b')",  # txn 1
        f"UPDATE {t} SET v = 'c' WHERE id = 1",  # txn 2
        f"DELETE FROM {t} WHERE id = 2",  # txn 3
        f"INSERT INTO {t} (id, v) VALUES (3, 'd')",  # txn 4
    )
    stream, got = await take(first, 5)
    applied: dict[str, tuple[str, Any]] = {}  # an idempotent sink: keyed by Message.id
    # txn 1 and 2 confirmed; txn 3 is left unacknowledged; txn 4 acked, but after the gap
    for index in (0, 1, 2, 4):
        applied.setdefault(got[index].message.id, summary(got[index]))
        await got[index].ack()
    await stream.aclose()
    await first.aclose()  # stops without acking txn 3: its change must come again

    second = PostgresCdcSource(capture)
    await second.start()
    try:
        stream, again = await take(second, 2)
        assert [d.message.id for d in again] == [got[3].message.id, got[4].message.id]
        assert [summary(d) for d in again] == [summary(got[3]), summary(got[4])]
        for delivery in again:
            applied.setdefault(delivery.message.id, summary(delivery))
            await delivery.ack()
        await run_sql(f"UPDATE {t} SET v = 'e' WHERE id = 3")
        _, more = await take(second, 1)
        applied.setdefault(more[0].message.id, summary(more[0]))
        await more[0].ack()
        await stream.aclose()
    finally:
        await second.aclose()
    # nothing skipped, nothing applied twice: by commit order, exactly the six changes
    ordered = sorted(
        applied.items(), key=lambda item: [int(part, 16) for part in item[0].replace("/", " ").split()]
    )
    assert [change for _, change in ordered] == [
        ("insert", {"id": 1, "v": "a", "n": None, "j": None}),
        ("insert", {"id": 2, "v": "b", "n": None, "j": None}),
        ("update", {"id": 1, "v": "c", "n": None, "j": None}),
        ("delete", {"id": 2}),
        ("insert", {"id": 3, "v": "d", "n": None, "j": None}),
        ("update", {"id": 3, "v": "e", "n": None, "j": None}),
    ]


async def test_a_nacked_change_comes_again_and_holds_the_slot(
    schema: str, capture: PostgresCdcConfig
) -> None:
    source = PostgresCdcSource(capture)
    await source.start()
    try:
        await run_sql(
            f"""INSERT INTO "{schema}".t (id) VALUES (1)""", f"""INSERT INTO "{schema}".t (id) VALUES (2)"""
        )
        stream, got = await take(source, 2)
        await got[0].nack()
        await got[1].ack()
        again = await asyncio.wait_for(anext(stream), 20)
        assert again.redelivered
        assert again.message.id == got[0].message.id
        await again.ack()
        await stream.aclose()
    finally:
        await source.aclose()


async def test_a_second_reader_waits_until_the_first_stops(schema: str, capture: PostgresCdcConfig) -> None:
    first, second = PostgresCdcSource(capture), PostgresCdcSource(capture, FlowServices(flow="standby"))
    await first.start()
    await second.start()
    await run_sql(f"""INSERT INTO "{schema}".t (id) VALUES (1)""")
    stream_a, got = await take(first, 1)
    stream_b = second.deliveries(max_in_flight=10)
    waiting = asyncio.ensure_future(anext(stream_b))
    done, _ = await asyncio.wait({waiting}, timeout=0.5)
    assert not done  # hot standby: the slot has one reader
    await got[0].ack()
    await stream_a.aclose()
    await first.aclose()
    await run_sql(f"""INSERT INTO "{schema}".t (id) VALUES (2)""")
    try:
        taken_over = await asyncio.wait_for(waiting, 20)
        assert taken_over.message.payload["new"]["id"] == 2
        await taken_over.ack()
    finally:
        with contextlib.suppress(BaseException):
            await stream_b.aclose()
        await second.aclose()


async def test_a_missing_publication_is_a_config_error(schema: str) -> None:
    async with await connect() as conn:
        await require_logical(conn)
    config = PostgresCdcConfig(dsn=DSN, slot=unique("flows_slot"), publication=unique("nope"))
    source = PostgresCdcSource(config)
    with pytest.raises(ConfigError, match="create_publication"):
        await source.start()
    await source.aclose()


async def test_never_more_than_max_in_flight_unacknowledged(schema: str, capture: PostgresCdcConfig) -> None:
    source = PostgresCdcSource(capture)
    await source.start()
    try:
        await run_sql(f"""INSERT INTO "{schema}".t (id) SELECT generate_series(1, 5)""")  # one transaction
        stream, got = await take(source, 2, max_in_flight=2)
        third = asyncio.ensure_future(anext(stream))
        done, _ = await asyncio.wait({third}, timeout=0.3)
        assert not done  # both slots are taken: the source waits for an acknowledgement
        await got[0].ack()
        assert (await asyncio.wait_for(third, 20)).message.payload["new"]["id"] == 3
        await stream.aclose()
    finally:
        await source.aclose()


async def test_a_lost_connection_is_reopened_and_nothing_is_lost(
    schema: str, capture: PostgresCdcConfig
) -> None:
    source = PostgresCdcSource(capture)
    await source.start()
    try:
        await run_sql(f"""INSERT INTO "{schema}".t (id) VALUES (1)""")
        stream, got = await take(source, 1)
        assert source._conn is not None
        async with await connect() as admin:  # the server drops the source's session (a failover, a restart)
            await admin.execute("SELECT pg_terminate_backend(%s)", (source._conn.info.backend_pid,))
        await got[0].ack()  # confirmed on a new connection
        await run_sql(f"""INSERT INTO "{schema}".t (id) VALUES (2)""")
        after = await asyncio.wait_for(anext(stream), 20)
        assert after.message.payload["new"]["id"] == 2
        await after.ack()
        await stream.aclose()
    finally:
        await source.aclose()
    async with await connect() as conn:
        row = await (
            await conn.execute(
                "SELECT count(*) FROM pg_logical_slot_peek_binary_changes(%s, NULL, NULL, "
                "'proto_version', '1', 'publication_names', %s)",
                (capture.slot, capture.publication),
            )
        ).fetchone()
    assert row == (0,)  # both changes confirmed
