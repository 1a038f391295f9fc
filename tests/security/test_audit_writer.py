"""The audit writer: batches off the request path, one linear chain across writers, nothing lost.

The store goes down two ways: the state database's engine refuses connections (``FlakyDatabase``, on
SQLite and Postgres), and — on Postgres — a real TCP proxy in front of the server is stopped and
started again, so the writer meets real refused connections and real cut ones.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import make_url
from tests.support.databases import state_database
from tests.support.events import FlakyDatabase, record

from interlace.observability.record import RequestRecord
from interlace.security.audit.store import verify
from interlace.security.audit.writer import AuditWriter
from interlace.store.audit_tables import audit_log
from interlace.store.database import Database

KEY = b"audit-key-" * 4


@pytest.fixture(params=["sqlite", "postgres"])
async def database(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[FlakyDatabase]:
    async for database in state_database(request.param, tmp_path):
        yield database


@pytest.fixture
async def postgres(tmp_path: Path) -> AsyncIterator[FlakyDatabase]:
    async for database in state_database("postgres", tmp_path):
        yield database


def writer(database: Database, spool: Path, **options: Any) -> AuditWriter:
    return AuditWriter(database, spool_dir=spool, key=KEY, **options)


def records(count: int, prefix: str) -> list[RequestRecord]:
    return [record(request_id=f"{prefix}-{index}", tenant="acme") for index in range(count)]


async def request_ids(database: Database) -> list[str]:
    async with database.engine.connect() as connection:
        found = await connection.execute(select(audit_log.c.request_id).order_by(audit_log.c.seq))
        return list(found.scalars())


async def count(database: Database) -> int:
    async with database.engine.connect() as connection:
        return int(await connection.scalar(select(func.count()).select_from(audit_log)) or 0)


def is_behind(log: AuditWriter) -> bool:
    """Whether entries wait in the spool (a function, so each check reads it afresh)."""
    return log.behind


def spooled_lines(spool: Path) -> int:
    return sum(len(path.read_bytes().splitlines()) for path in spool.glob("*.jsonl"))


async def test_records_are_chained_in_the_order_observed(database: FlakyDatabase, tmp_path: Path) -> None:
    log = writer(database, tmp_path / "spool", batch_size=3)
    await log.start()
    for rec in records(10, "r"):
        log.observe(rec)
    await log.aclose()

    assert await request_ids(database) == [f"r-{index}" for index in range(10)]
    result = await verify(database, KEY)
    assert result.ok
    assert result.head_seq == 10
    assert log.stats.appended == 10


async def test_a_store_outage_is_spooled_then_appended_in_order(
    database: FlakyDatabase, tmp_path: Path
) -> None:
    spool = tmp_path / "spool"
    log = writer(database, spool, retry_for=0.0)
    await log.start()
    for rec in records(3, "before"):
        log.observe(rec)
    await log.flush()

    database.down = True
    for rec in records(4, "during"):
        log.observe(rec)
        await log.flush()  # each record its own batch, each to the spool
    assert is_behind(log)
    assert spooled_lines(spool) == 4
    assert log.stats.spooled == 4

    database.down = False
    for rec in records(2, "after"):
        log.observe(rec)
    await asyncio.sleep(0.06)  # past the first probe delay (50 ms): the next batch probes the store
    await log.flush()

    assert not is_behind(log)
    assert await request_ids(database) == [
        *(f"before-{i}" for i in range(3)),
        *(f"during-{i}" for i in range(4)),
        *(f"after-{i}" for i in range(2)),
    ]
    assert list(spool.glob("*.jsonl")) == []
    assert (await verify(database, KEY)).ok
    await log.aclose()


async def test_a_spool_left_behind_is_appended_on_start(database: FlakyDatabase, tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    first = writer(database, spool, retry_for=0.0)
    await first.start()
    database.down = True
    for rec in records(5, "left"):
        first.observe(rec)
    await first.aclose()  # the store is down: everything goes to the spool
    assert spooled_lines(spool) == 5
    assert await _count_when_up(database) == 0

    second = writer(database, spool)
    await second.start()

    assert await request_ids(database) == [f"left-{index}" for index in range(5)]
    assert second.stats.recovered == 5
    assert (await verify(database, KEY)).ok
    await second.aclose()


async def _count_when_up(database: FlakyDatabase) -> int:
    database.down = False
    return await count(database)


async def test_a_spool_replayed_twice_appends_each_entry_once(
    database: FlakyDatabase, tmp_path: Path
) -> None:
    spool = tmp_path / "spool"
    log = writer(database, spool, retry_for=0.0)
    database.down = True
    for rec in records(3, "twice"):
        log.observe(rec)
    await log.aclose()
    copy = spool / "events-copy-1.jsonl"  # the same entries again, as if a replay had been cut short
    copy.write_bytes(next(spool.glob("events-*.jsonl")).read_bytes())
    database.down = False

    again = writer(database, spool)
    await again.start()

    assert await request_ids(database) == [f"twice-{index}" for index in range(3)]
    assert again.stats.duplicates == 3
    await again.aclose()


async def test_a_full_queue_is_spooled_in_order_not_dropped(database: FlakyDatabase, tmp_path: Path) -> None:
    log = writer(database, tmp_path / "spool", max_queue=2)
    await log.start()
    for rec in records(5, "burst"):  # observed faster than the background task runs
        log.observe(rec)
    await log.aclose()

    again = writer(database, tmp_path / "spool")
    await again.start()
    await again.aclose()
    assert await request_ids(database) == [f"burst-{index}" for index in range(5)]
    assert (await verify(database, KEY)).ok


async def test_a_queue_filling_while_a_batch_is_made_is_spooled_once_in_order(
    database: FlakyDatabase, tmp_path: Path
) -> None:
    """The writer makes a batch's bodies in slices; a full queue spools everything between two."""
    log = writer(database, tmp_path / "spool", max_queue=45)
    for rec in records(40, "first"):
        log.observe(rec)
    drain = asyncio.create_task(log.flush())
    await asyncio.sleep(0)  # the drain made one slice of bodies and let the loop run
    queued = log.queued
    assert 0 < queued < 40
    then = records(45 - queued + 1, "then")
    for rec in then:  # the last one finds the queue full: bodies made so far and the queue are spooled
        log.observe(rec)
    assert log.queued == 0
    for rec in records(3, "after"):  # and the writer goes on after them
        log.observe(rec)
    await drain
    await log.aclose()

    again = writer(database, tmp_path / "spool")
    await again.start()
    await again.aclose()
    expected = (
        [f"first-{i}" for i in range(40)] + [r.request_id for r in then] + ["after-0", "after-1", "after-2"]
    )
    assert await request_ids(database) == expected
    assert (await verify(database, KEY)).ok


async def test_two_writers_on_one_postgres_keep_one_linear_chain(
    postgres: FlakyDatabase, tmp_path: Path
) -> None:
    other = Database(postgres.url)
    await other.start()
    try:
        one = writer(postgres, tmp_path / "one", batch_size=7, flush_interval=0.01)
        two = writer(other, tmp_path / "two", batch_size=5, flush_interval=0.01)
        await asyncio.gather(one.start(), two.start())

        async def feed(log: AuditWriter, prefix: str) -> None:
            for rec in records(120, prefix):
                log.observe(rec)
                if rec.request_id.endswith("0"):
                    await asyncio.sleep(0)  # let the background tasks interleave their batches

        await asyncio.gather(feed(one, "one"), feed(two, "two"))
        await asyncio.gather(one.aclose(), two.aclose())
    finally:
        await other.aclose()

    ids = await request_ids(postgres)
    assert len(ids) == 240
    assert [i for i in ids if i.startswith("one")] == [f"one-{index}" for index in range(120)]
    assert [i for i in ids if i.startswith("two")] == [f"two-{index}" for index in range(120)]
    result = await verify(postgres, KEY)
    assert result.ok
    assert result.head_seq == 240
    assert one.stats.batches > 1
    assert two.stats.batches > 1


class Proxy:
    """A TCP proxy on 127.0.0.1 that can be stopped (refusing and cutting connections) and restarted."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.port = 0
        self._server: asyncio.Server | None = None
        self._links: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._link, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for stream in list(self._links):
                stream.close()
            await self._server.wait_closed()
            self._server = None

    async def _link(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection(*self.target)
        self._links.update({writer, upstream_writer})

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError, asyncio.IncompleteReadError):
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            sink.close()

        await asyncio.gather(pipe(reader, upstream_writer), pipe(upstream_reader, writer))
        self._links.difference_update({writer, upstream_writer})


async def test_postgres_stopped_under_the_writer_loses_nothing(
    postgres: FlakyDatabase, tmp_path: Path
) -> None:
    url = make_url(postgres.url)
    proxy = Proxy(url.host or "127.0.0.1", url.port or 5432)
    await proxy.start()
    through = Database(url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False))
    await through.start()
    spool = tmp_path / "spool"
    log = writer(through, spool, retry_for=0.2)
    try:
        await log.start()
        for rec in records(3, "up"):
            log.observe(rec)
        await log.flush()

        await proxy.stop()  # the server is gone: open connections are cut, new ones refused
        for rec in records(4, "down"):
            log.observe(rec)
        await log.flush()
        assert is_behind(log)
        assert spooled_lines(spool) == 4

        await proxy.start()  # back on the same port
        await asyncio.sleep(0.3)  # past the probe delay
        for rec in records(2, "back"):
            log.observe(rec)
        await log.flush()
        assert not is_behind(log)
    finally:
        await log.aclose()
        await through.aclose()
        await proxy.stop()

    assert await request_ids(postgres) == [
        *(f"up-{i}" for i in range(3)),
        *(f"down-{i}" for i in range(4)),
        *(f"back-{i}" for i in range(2)),
    ]
    assert (await verify(postgres, KEY)).ok
