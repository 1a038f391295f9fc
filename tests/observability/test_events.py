"""The event log: observed → flushed → exact read model; replay; spool on failure; observe never blocks."""

from __future__ import annotations

import asyncio
import statistics
import time
from dataclasses import asdict, astuple
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import func, insert, select, update
from sqlalchemy.dialects import sqlite
from tests.support.events import FlakyDatabase, at, record

from interlace.config.schema import Price
from interlace.observability.cost import cost_usd
from interlace.observability.events import (
    CONTENT_FIELDS,
    EventLog,
    event_json,
    event_row_of,
    replay,
    to_event,
    usage,
)
from interlace.observability.observer import FanOut
from interlace.observability.record import RequestRecord, Usage
from interlace.observability.spool import Spool
from interlace.store.event_sql import sqlite_time
from interlace.store.event_store import append, event_row, record_row
from interlace.store.events_tables import USAGE_KEYS, request_events, usage_daily

GPT = Price(input=2.5, output=10, cached_input=1.25)
MINI = Price(input=0.15, output=0.6, cached_input=0.075, reasoning=2.4)
CLAUDE = Price(input=3, output=15)


def priced(price: Price, **fields: Any) -> RequestRecord:
    """A record whose cost is its usage at ``price``, as the gateway computes it."""
    rec = record(**fields)
    rec.cost_usd = cost_usd(rec.usage, price)
    return rec


def scripted() -> list[RequestRecord]:
    heavy = {"prompt": 1000, "cached": 400, "completion": 500, "reasoning": 200}  # 0.007 USD at GPT
    return [
        priced(GPT, day="2026-12-01", **heavy),
        priced(GPT, day="2026-12-01", status=502),
        priced(
            CLAUDE,
            day="2026-12-01",
            api_key_id="key-2",
            model="claude",
            prompt=10,
            completion=7,
            estimated=True,
            partial=True,
        ),
        priced(GPT, day="2026-12-01", tenant="acme", api_key_id="key-3", prompt=100, completion=50),
        priced(
            MINI,
            day="2026-12-01",
            model="mini",
            shadow=True,
            prompt=1234,
            cached=1000,
            completion=321,
            reasoning=300,
        ),
        priced(GPT, day="2026-12-02", **heavy),
        priced(GPT, day="2026-12-02", api_key_id=None, status=429),
    ]


# key, requests, errors, partial, estimated, prompt, completion, cached, reasoning, cost, shadow, shadow cost
BY_DAY = [
    ("2026-12-01", 3, 1, 1, 1, 1010, 507, 400, 200, 7_135_000, 1, 842_700),
    ("2026-12-02", 2, 1, 0, 0, 1000, 500, 400, 200, 7_000_000, 0, 0),
]
BY_MODEL = [
    ("claude", 1, 0, 1, 1, 10, 7, 0, 0, 135_000, 0, 0),
    ("gpt", 4, 2, 0, 0, 2000, 1000, 800, 400, 14_000_000, 0, 0),
    ("mini", 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 842_700),
]
BY_KEY = [
    (None, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0),
    ("key-1", 3, 1, 0, 0, 2000, 1000, 800, 400, 14_000_000, 1, 842_700),
    ("key-2", 1, 0, 1, 1, 10, 7, 0, 0, 135_000, 0, 0),
]
DEC_1, DEC_2 = date(2026, 12, 1), date(2026, 12, 2)


async def report(database: FlakyDatabase, tenant: str | None = None, **window: Any) -> dict[str, Any]:
    start, end = window.get("start", DEC_1), window.get("end", DEC_2)
    return {
        by: [astuple(row) for row in await usage(database, tenant=tenant, start=start, end=end, group_by=by)]
        for by in ("day", "model", "api_key")
    }


async def read_model(database: FlakyDatabase) -> list[tuple[Any, ...]]:
    async with database.engine.connect() as connection:
        query = select(usage_daily).order_by(*(usage_daily.c[key] for key in USAGE_KEYS))
        return [tuple(row) for row in await connection.execute(query)]


async def event_count(database: FlakyDatabase) -> int:
    async with database.engine.connect() as connection:
        return int(await connection.scalar(select(func.count()).select_from(request_events)) or 0)


def event_log(database: FlakyDatabase, tmp_path: Path, **options: Any) -> EventLog:
    return EventLog(database, spool_dir=tmp_path / "spool", **options)


async def test_observed_records_are_flushed_into_exact_usage_rows(
    database: FlakyDatabase, tmp_path: Path
) -> None:
    log = event_log(database, tmp_path, batch_size=2)
    await log.start()
    fan_out = FanOut([log])
    for rec in scripted():
        fan_out.observe(rec)
    await log.aclose()

    assert await report(database) == {"day": BY_DAY, "model": BY_MODEL, "api_key": BY_KEY}
    acme = await report(database, tenant="acme")
    assert acme["day"] == [("2026-12-01", 1, 0, 0, 0, 100, 50, 0, 0, 750_000, 0, 0)]
    assert await report(database, tenant="nobody") == {"day": [], "model": [], "api_key": []}
    second_day = await report(database, start=DEC_2, end=DEC_2)
    assert second_day["day"] == BY_DAY[1:]
    assert log.stats.appended == 7
    assert log.stats.batches == 4
    assert await event_count(database) == 7
    rows = await usage(database, tenant=None, start=DEC_1, end=DEC_1)
    assert rows[0].cost_usd == 0.007135
    assert rows[0].shadow_cost_usd == 0.0008427


async def test_events_keep_the_whole_record(database: FlakyDatabase, tmp_path: Path) -> None:
    rec = scripted()[2]
    rec.chunk_gaps_s = [0.01, float("nan")]
    rec.prompt = [{"role": "user", "content": "secret"}]  # captured for the request log only
    rec.completion = "also secret"
    log = event_log(database, tmp_path)
    log.observe(rec)
    await log.aclose()
    async with database.engine.connect() as connection:
        row = (await connection.execute(select(request_events))).one()
    assert (row.request_id, row.tenant, row.api_key_id, row.model, row.status) == (
        rec.request_id,
        None,
        "key-2",
        "claude",
        200,
    )
    assert row.occurred_at.timestamp() == at("2026-12-01")
    assert row.record == {**to_event(rec), "chunk_gaps_s": [0.01, None]}
    assert "prompt" not in row.record
    assert "completion" not in row.record
    assert "secret" not in str(row.record)
    assert row.record["usage"] == {
        "prompt_tokens": 10, "completion_tokens": 7, "cached_tokens": 0, "reasoning_tokens": 0,
        "estimated": True,
    }  # fmt: skip


async def test_replay_rebuilds_the_read_model_identical_to_the_live_one(
    database: FlakyDatabase, tmp_path: Path
) -> None:
    log = event_log(database, tmp_path, batch_size=3)
    await log.start()
    for rec in scripted() * 1:
        log.observe(rec)
    for index in range(200):  # more, over several days, tenants, keys and models, in many batches
        log.observe(
            priced(
                GPT,
                started_at=at("2026-11-20") + index * 7_000,
                tenant=("a", "b", None)[index % 3],
                api_key_id=f"k{index % 4}",
                model=("gpt", "claude")[index % 2],
                prompt=index,
                completion=index % 17,
                cached=index // 3,
                reasoning=index % 5,
                partial=index % 11 == 0,
                status=(200, 200, 500)[index % 3],
            )
        )
    await log.aclose()
    live = await read_model(database)
    assert len(live) > 20

    calls: list[tuple[int, int]] = []
    result = await replay(database, batch_size=50, progress=lambda done, total: calls.append((done, total)))
    assert await read_model(database) == live
    assert (result.events, result.rows) == (207, len(live))
    assert calls == [(0, 207), (50, 207), (100, 207), (150, 207), (200, 207), (207, 207)]

    # a damaged read model is restored; replaying again changes nothing
    async with database.engine.begin() as connection:
        await connection.execute(update(usage_daily).values(requests=usage_daily.c.requests + 5))
        await connection.execute(usage_daily.delete().where(usage_daily.c.model == "claude"))
    await replay(database)
    await replay(database)
    assert await read_model(database) == live


async def test_an_event_is_counted_once_and_every_request_is_one(
    database: FlakyDatabase, tmp_path: Path
) -> None:
    first = record(prompt=5, request_id="same")
    log = event_log(database, tmp_path, batch_size=1)
    await log.start()
    log.observe(first)
    log.observe(first)  # the same event again, in another batch (as a spool replayed twice): once
    log.observe(record(prompt=7, request_id="same"))  # a client reusing its x-request-id: a request
    log.observe(record(prompt=5, request_id="same", shadow=True))  # its shadow call is another event
    await log.aclose()
    assert (log.stats.appended, log.stats.duplicates) == (3, 1)
    assert (await report(database))["day"] == [("2026-12-01", 2, 0, 0, 0, 12, 0, 0, 0, 0, 1, 0)]


async def test_spool_on_database_failure_then_recovery_without_loss_or_duplicates(
    database: FlakyDatabase, tmp_path: Path
) -> None:
    log = event_log(database, tmp_path, batch_size=4, retry_for=0.05, flush_interval=0.01)
    await log.start()
    records = scripted()
    database.down = True
    for rec in records[:5]:
        log.observe(rec)
    await log.flush()
    assert log.stats.spooled == 5
    assert log.stats.failures >= 1
    spooled = list((tmp_path / "spool").glob("events-*.jsonl"))
    assert len(spooled) == 1
    assert len(spooled[0].read_bytes().splitlines()) == 5

    database.down = False
    await asyncio.sleep(0.1)  # past the next probe
    for rec in records[5:]:
        log.observe(rec)
    await log.flush()  # succeeds, so the spool is replayed too
    assert log.stats.recovered == 5
    assert not list((tmp_path / "spool").glob("events-*.jsonl"))
    await log.aclose()
    assert await report(database) == {"day": BY_DAY, "model": BY_MODEL, "api_key": BY_KEY}
    assert await event_count(database) == 7
    assert log.stats.duplicates == 0


async def test_a_spool_left_behind_is_replayed_on_start_idempotently(
    database: FlakyDatabase, tmp_path: Path
) -> None:
    records = scripted()
    down = event_log(database, tmp_path, retry_for=0.01)
    await down.start()
    database.down = True
    for rec in records[:4]:
        down.observe(rec)
    await down.aclose()  # the database is down: everything goes to the spool
    down.observe(records[4])  # after closing: straight to the spool
    assert down.stats.spooled + down.stats.spilled == 5

    database.down = False
    # a crash after a commit, before the spool file was deleted: two events are already in the log
    writer = event_log(database, tmp_path / "other")
    writer.observe(records[0])
    writer.observe(records[1])
    await writer.aclose()

    restarted = event_log(database, tmp_path)
    await restarted.start()
    for rec in records[5:]:
        restarted.observe(rec)
    await restarted.aclose()
    assert restarted.stats.recovered == 5
    assert restarted.stats.duplicates == 2
    assert await report(database) == {"day": BY_DAY, "model": BY_MODEL, "api_key": BY_KEY}


async def test_a_full_queue_spills_to_the_spool_and_nothing_is_lost(
    sqlite_database: FlakyDatabase, tmp_path: Path
) -> None:
    log = event_log(sqlite_database, tmp_path, max_queue=10)
    for index in range(25):
        log.observe(record(prompt=index))
    assert (log.queued, log.stats.spilled) == (10, 15)
    await log.start()  # replays the 15 spilled
    await log.aclose()  # writes the 10 queued
    assert (log.stats.recovered, log.stats.appended) == (15, 25)
    assert (await report(sqlite_database))["day"] == [("2026-12-01", 25, 0, 0, 0, 300, 0, 0, 0, 0, 0, 0)]


async def test_what_overflowed_goes_in_once_the_queue_has_drained(
    sqlite_database: FlakyDatabase, tmp_path: Path
) -> None:
    log = event_log(sqlite_database, tmp_path, max_queue=10, flush_interval=0.01)
    await log.start()
    for index in range(25):  # faster than the writer: 15 overflow to the spool
        log.observe(record(prompt=index))
    assert log.stats.spilled == 15
    for _ in range(200):  # no restart: the writer drains the queue, then replays the spool
        if log.stats.recovered == 15:
            break
        await asyncio.sleep(0.01)
    assert (log.stats.recovered, log.stats.appended) == (15, 25)
    assert not list((tmp_path / "spool").glob("*.jsonl"))
    assert (await report(sqlite_database))["day"] == [("2026-12-01", 25, 0, 0, 0, 300, 0, 0, 0, 0, 0, 0)]
    await log.aclose()


async def test_a_running_writer_s_spool_is_not_taken(sqlite_database: FlakyDatabase, tmp_path: Path) -> None:
    writer = Spool(tmp_path / "spool")
    writer.append_encoded([event_json(record())])
    other = event_log(sqlite_database, tmp_path)
    assert await other.recover_spool() == 0  # locked by its writer
    writer.close()
    assert await other.recover_spool() == 1


async def test_torn_lines_are_skipped(sqlite_database: FlakyDatabase, tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool")
    spool.append([to_event(record(prompt=1)), to_event(record(prompt=2))])
    spool.close()
    path = next((tmp_path / "spool").glob("*.jsonl"))
    path.write_bytes(path.read_bytes() + b'{"request_id": "torn", "sta')
    log = event_log(sqlite_database, tmp_path)
    assert await log.recover_spool() == 2
    assert not path.exists()


async def test_observe_never_raises(sqlite_database: FlakyDatabase, tmp_path: Path) -> None:
    log = event_log(sqlite_database, tmp_path, max_queue=0)
    log.observe(object())  # type: ignore[arg-type] # not serialisable: logged and dropped, not raised
    log.observe(record())
    assert log.stats.spilled == 1
    await log.aclose()


async def test_observe_never_blocks(sqlite_database: FlakyDatabase, tmp_path: Path) -> None:
    log = event_log(sqlite_database, tmp_path, max_queue=100_000, batch_size=100_000)
    records = [record(prompt=i, completion=i) for i in range(20_000)]
    sqlite_database.down = True  # the database being down changes nothing for observe
    timings = []
    for rec in records:
        began = time.perf_counter_ns()
        log.observe(rec)
        timings.append(time.perf_counter_ns() - began)
    timings.sort()
    mean_us = statistics.fmean(timings) / 1000
    p99_us = timings[int(len(timings) * 0.99)] / 1000
    print(f"observe: mean {mean_us:.2f} µs, p99 {p99_us:.2f} µs")  # noqa: T201
    assert mean_us < 20
    assert p99_us < 20
    sqlite_database.down = False
    await log.aclose()
    assert log.stats.appended == 20_000


async def test_the_writer_keeps_up(database: FlakyDatabase, tmp_path: Path) -> None:
    log = event_log(database, tmp_path)
    count = 5_000
    for index in range(count):
        log.observe(record(prompt=index, api_key_id=f"k{index % 10}", model=f"m{index % 3}", cost_usd=1e-6))
    began = time.perf_counter()
    await log.start()
    await log.aclose()
    elapsed = time.perf_counter() - began
    print(f"flush: {count / elapsed:,.0f} events/s ({database.engine.dialect.name})")  # noqa: T201
    assert log.stats.appended == count
    assert count / elapsed > 500
    rows = await usage(database, tenant=None, start=DEC_1, end=DEC_1, group_by="model")
    assert [(row.key, row.requests, row.cost_nanos) for row in rows] == [
        ("m0", 1667, 1_667_000), ("m1", 1667, 1_667_000), ("m2", 1666, 1_666_000),
    ]  # fmt: skip


async def test_records_are_usage_objects(sqlite_database: FlakyDatabase, tmp_path: Path) -> None:
    # estimated usage from OpenAI's shape flows through unchanged
    rec = record()
    rec.usage = Usage.from_openai({"prompt_tokens": 3, "completion_tokens": 2, "estimated": True})
    log = event_log(sqlite_database, tmp_path)
    log.observe(rec)
    await log.aclose()
    assert (await report(sqlite_database))["day"] == [("2026-12-01", 1, 0, 0, 1, 3, 2, 0, 0, 0, 0, 0)]


def migrate(connection: Any, target: str, *, down: bool) -> None:
    from alembic import command  # noqa: PLC0415
    from alembic.config import Config  # noqa: PLC0415

    from interlace.store.database import MIGRATIONS  # noqa: PLC0415

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    (command.downgrade if down else command.upgrade)(config, target)


async def test_events_logged_before_event_ids_keep_their_place_and_their_spool(
    database: FlakyDatabase, tmp_path: Path
) -> None:
    """0008: rows logged by request id get the id their spool replays with; new requests are new."""
    old, shadow = record(prompt=3, request_id="old"), record(prompt=4, request_id="old", shadow=True)
    async with database.engine.begin() as connection:
        await connection.run_sync(migrate, "0007", down=True)
        for rec in (old, shadow):  # as the log wrote them then: without an event id
            row = event_row_of(rec)
            columns = ("request_id", "shadow", "occurred_at", "tenant", "api_key_id", "model", "status")
            values = {name: getattr(row, name) for name in columns}
            await connection.execute(insert(request_events).values(record=orjson.loads(row.record), **values))
        await connection.run_sync(migrate, "head", down=False)
    async with database.engine.connect() as connection:
        query = select(request_events.c.event_id).order_by(request_events.c.seq)
        assert list((await connection.execute(query)).scalars()) == ["old", "old:shadow"]
    spooled = [{k: v for k, v in to_event(rec).items() if k != "event_id"} for rec in (old, shadow)]
    assert await append(database, [event_row(event) for event in spooled]) == 0  # an old spool, replayed
    assert await append(database, [event_row_of(record(prompt=5, request_id="old"))]) == 1


@pytest.mark.parametrize("revision", ["0002"])
async def test_the_migration_goes_down_and_up(sqlite_database: FlakyDatabase, revision: str) -> None:
    async with sqlite_database.engine.begin() as connection:
        await connection.run_sync(migrate, revision, down=True)
        tables = await connection.run_sync(lambda c: c.dialect.get_table_names(c))
        assert "request_events" not in tables
        await connection.run_sync(migrate, "head", down=False)
    log = event_log(sqlite_database, Path(str(sqlite_database.url)).parent)
    log.observe(record())
    await log.aclose()
    assert log.stats.appended == 1


async def test_odd_values_are_logged_and_the_writer_survives(
    sqlite_database: FlakyDatabase, tmp_path: Path
) -> None:
    odd = record(prompt=1)
    odd.confidence = Decimal("0.5")  # type: ignore[assignment] # not JSON: stored as its repr
    odd.prompt = {1: b"\x00", "x": object()}  # captured content: not stored at all
    log = event_log(sqlite_database, tmp_path)
    await log.start()
    log.observe(odd)
    log.observe(record(prompt=2))
    await log.aclose()
    assert log.stats.appended == 2
    async with sqlite_database.engine.connect() as connection:
        stored = (await connection.execute(select(request_events.c.record))).scalars().all()
    assert stored[0]["confidence"] == "Decimal('0.5')"


def varied_records() -> tuple[list[RequestRecord], list[RequestRecord]]:
    """Records with every kind of value the log's projection reads: JSON-plain ones, and odd ones."""
    with_content = record(prompt=3)
    with_content.prompt = [{"role": "user", "content": "secret"}]
    with_content.completion = "also secret"
    only_completion = record()
    only_completion.completion = "answer"
    no_served = record()
    no_served.served_model = None
    bool_tokens = record()
    bool_tokens.usage.prompt_tokens = True
    plain = [
        *scripted(),
        record(started_at=at("2026-12-01") + 0.1234565, cost_usd=1e-9, status=499, partial=True),
        record(api_key_id=None, model="", tenant="t" * 300, request_id="r" * 300, prompt=-3, completion=7),
        record(started_at=0, cost_usd=0.0, status=0),
        with_content,
        only_completion,
        no_served,
        bool_tokens,
    ]
    for name, value in [("status", True), ("served_model", 5), ("shadow", 1), ("partial", "yes")]:
        rec = record(prompt=2, cost_usd=0.5)
        setattr(rec, name, value)
        plain.append(rec)
    odd = []
    for name, value in [("cost_usd", float("nan")), ("started_at", float("inf")), ("tenant", Decimal(1))]:
        rec = record(prompt=2, cost_usd=0.5)
        setattr(rec, name, value)
        odd.append(rec)
    return plain, odd


def test_a_record_s_row_is_the_row_of_its_event() -> None:
    plain, odd = varied_records()
    for rec in [*plain, *odd]:
        event = to_event(rec)
        row = event_row_of(rec)
        assert row == event_row(event, row.record), rec
        assert orjson.loads(row.record) == event
        assert "prompt" not in event
        assert "completion" not in event
        expected = {name: value for name, value in asdict(rec).items() if name not in CONTENT_FIELDS}
        assert event_json(rec) == orjson.dumps(expected, default=repr, option=orjson.OPT_NON_STR_KEYS)
    # plain values are read from the record; odd ones (which JSON changes) from the JSON
    assert all(record_row(rec, event_json(rec).decode()) is not None for rec in plain)
    assert all(record_row(rec, event_json(rec).decode()) is None for rec in odd)


async def test_a_batch_half_logged_already_counts_only_its_new_events(database: FlakyDatabase) -> None:
    first, second, third = (event_row_of(record(prompt=n, request_id=f"half-{n}")) for n in (1, 2, 3))
    assert await append(database, [second]) == 1
    assert await append(database, [first, second, third, first]) == 2
    assert await event_count(database) == 3
    assert (await report(database))["day"] == [("2026-12-01", 3, 0, 0, 0, 6, 0, 0, 0, 0, 0, 0)]
    async with database.engine.connect() as connection:
        query = select(request_events.c.request_id).order_by(request_events.c.seq)
        assert list((await connection.execute(query)).scalars()) == ["half-2", "half-1", "half-3"]


async def test_a_failed_batch_commits_nothing(database: FlakyDatabase) -> None:
    rows = [event_row_of(record(prompt=n)) for n in (1, 2)]
    counted = rows[1].increments
    rows[1].increments = {"no_such_metric": 1}  # fails after the events are inserted, before the commit
    with pytest.raises(KeyError):
        await append(database, rows)
    assert await event_count(database) == 0
    rows[1].increments = counted
    assert await append(database, rows) == 2
    assert (await report(database))["day"] == [("2026-12-01", 2, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0)]


def test_times_are_stored_on_sqlite_as_sqlalchemy_stores_them() -> None:
    process = sqlite.DATETIME().bind_processor(sqlite.dialect())
    assert process is not None
    for moment in (0.0, 1.0000005, at("2026-12-01") + 0.25, -4e10, 253402300799.0):
        when = datetime.fromtimestamp(moment, UTC)
        assert sqlite_time(when) == process(when)
