"""The audit chain in the database, on SQLite and on Postgres: tampering is found where it happened.

Each tampering test writes a chain, changes the table the way an attacker with database access would
(edit a field, delete an entry, swap two, insert one, cut the tail) and checks that ``verify`` names
the kind and the first sequence number affected — with and without the HMAC key.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import Text, cast, delete, insert, select, update
from tests.support.databases import state_database
from tests.support.events import FlakyDatabase, record

from interlace.security.audit.chain import GENESIS, canonical, entry_hash
from interlace.security.audit.entry import audit_body
from interlace.security.audit.store import (
    ALL_TENANTS,
    AuditFilter,
    append_chain,
    head,
    page,
    parse_bound,
    rows,
    verify,
)
from interlace.store.audit_tables import audit_log

KEY = b"k" * 32
ENTRIES = 8


@pytest.fixture(params=["sqlite", "postgres"])
async def database(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[FlakyDatabase]:
    async for database in state_database(request.param, tmp_path):
        yield database


@pytest.fixture(params=[KEY, None], ids=["hmac", "sha256"])
def key(request: pytest.FixtureRequest) -> bytes | None:
    value: bytes | None = request.param
    return value


def bodies(count: int, **fields: Any) -> list[dict[str, Any]]:
    return [audit_body(record(status=200 + index, **fields)) for index in range(count)]


async def chain(database: FlakyDatabase, key: bytes | None, count: int = ENTRIES) -> None:
    assert await append_chain(database, bodies(count), key) == count


async def stored(database: FlakyDatabase, seq: int) -> dict[str, Any]:
    async with database.engine.connect() as connection:
        row = (await connection.execute(select(audit_log).where(audit_log.c.seq == seq))).mappings().one()
    return dict(row)


async def execute(database: FlakyDatabase, *statements: Any) -> None:
    async with database.engine.begin() as connection:
        for statement in statements:
            await connection.execute(statement)


async def problem(database: FlakyDatabase, key: bytes | None) -> tuple[str, int]:
    result = await verify(database, key)
    assert result.problem is not None, "the tampering went unnoticed"
    return result.problem.kind, result.problem.seq


async def test_an_untouched_chain_verifies_and_reports_its_head(
    database: FlakyDatabase, key: bytes | None
) -> None:
    await chain(database, key, 3)
    await chain(database, key, 2)  # a second batch continues the chain

    result = await verify(database, key)

    assert result.ok
    assert (result.checked, result.head_seq) == (5, 5)
    assert (result.head_seq, result.head_hash) == await head(database)
    first = await stored(database, 1)
    assert first["prev_hash"] == GENESIS
    assert first["entry"]["alg"] == ("hmac-sha256" if key else "sha256")
    assert first["hash"] == entry_hash(GENESIS, first["entry"], key)


async def test_an_edited_field_is_found_at_its_entry(database: FlakyDatabase, key: bytes | None) -> None:
    await chain(database, key)
    entry = (await stored(database, 5))["entry"]
    await execute(
        database, update(audit_log).where(audit_log.c.seq == 5).values(entry={**entry, "status": 200})
    )

    assert await problem(database, key) == ("edited", 5)


async def test_a_deleted_entry_is_found(database: FlakyDatabase, key: bytes | None) -> None:
    await chain(database, key)
    await execute(database, delete(audit_log).where(audit_log.c.seq == 5))

    assert await problem(database, key) == ("deleted", 5)


async def test_the_first_entry_deleted_is_found(database: FlakyDatabase, key: bytes | None) -> None:
    await chain(database, key)
    await execute(database, delete(audit_log).where(audit_log.c.seq == 1))

    assert await problem(database, key) == ("deleted", 1)


async def test_two_swapped_entries_are_found(database: FlakyDatabase, key: bytes | None) -> None:
    await chain(database, key)
    five, six = await stored(database, 5), await stored(database, 6)
    await execute(
        database,
        delete(audit_log).where(audit_log.c.seq.in_([5, 6])),
        insert(audit_log).values({**six, "seq": 5}),
        insert(audit_log).values({**five, "seq": 6}),
    )

    assert await problem(database, key) == ("reordered", 5)


async def test_an_inserted_entry_is_found(database: FlakyDatabase, key: bytes | None) -> None:
    await chain(database, key)
    for seq in range(ENTRIES, 5, -1):  # make room at 6, one row at a time (the key is unique)
        await execute(database, update(audit_log).where(audit_log.c.seq == seq).values(seq=seq + 1))
    five = await stored(database, 5)
    forged = {**audit_body(record(status=200)), "seq": 6, "alg": five["entry"]["alg"]}
    # without the key the forger can only use one of its own (with SHA-256 the forgery is valid by itself)
    digest = entry_hash(five["hash"], forged, None if key is None else b"not-the-key" * 3)
    await execute(
        database,
        insert(audit_log).values(
            {
                **five,
                "seq": 6,
                "entry_id": forged["entry_id"],
                "prev_hash": five["hash"],
                "hash": digest,
                "entry": forged,
            }
        ),
    )

    assert await problem(database, key) == ("inserted", 6)


async def test_a_cut_tail_is_found_against_the_chain_head(database: FlakyDatabase, key: bytes | None) -> None:
    await chain(database, key)
    await execute(database, delete(audit_log).where(audit_log.c.seq >= ENTRIES - 1))

    assert await problem(database, key) == ("deleted", ENTRIES - 1)


async def test_an_edit_rehashed_without_the_key_breaks_the_next_link(database: FlakyDatabase) -> None:
    await chain(database, None)
    row = await stored(database, 5)
    entry = {**row["entry"], "tenant": "someone-else"}
    rehashed = entry_hash(row["prev_hash"], entry, None)
    await execute(database, update(audit_log).where(audit_log.c.seq == 5).values(entry=entry, hash=rehashed))

    assert await problem(database, None) == ("edited", 6)


async def test_the_same_edit_rehashed_is_found_at_its_entry_when_keyed(database: FlakyDatabase) -> None:
    await chain(database, KEY)
    row = await stored(database, 5)
    entry = {**row["entry"], "tenant": "someone-else"}
    rehashed = entry_hash(row["prev_hash"], entry, None)  # the forger has no key
    await execute(database, update(audit_log).where(audit_log.c.seq == 5).values(entry=entry, hash=rehashed))

    assert await problem(database, KEY) == ("edited", 5)


async def test_a_keyed_chain_needs_its_key(database: FlakyDatabase) -> None:
    await chain(database, KEY, 2)

    assert await problem(database, None) == ("unverifiable", 1)
    wrong = await verify(database, b"w" * 32)
    assert wrong.problem is not None
    assert (wrong.problem.kind, wrong.problem.seq) == ("edited", 1)


async def test_a_replayed_body_is_appended_once(database: FlakyDatabase) -> None:
    batch = bodies(3)

    assert await append_chain(database, batch, None) == 3
    assert await append_chain(database, [*batch, *bodies(1)], None) == 1
    assert await append_chain(database, [batch[0], batch[0]], None) == 0
    assert (await verify(database, None)).head_seq == 4


async def test_pages_filter_by_tenant_and_time(database: FlakyDatabase) -> None:
    await append_chain(database, bodies(3, tenant="acme", day="2026-11-20"), None)
    await append_chain(database, bodies(2, tenant="globex", day="2026-11-21"), None)
    await append_chain(database, bodies(1, tenant=None, day="2026-11-22"), None)

    acme, more = await page(database, AuditFilter(tenant="acme"), limit=2)
    assert [row.entry["tenant"] for row in acme] == ["acme", "acme"]
    assert more
    rest, more = await page(database, AuditFilter(tenant="acme"), limit=2, after=acme[-1].position or 0)
    assert [row.position for row in rest] == [3]
    assert not more
    nobody, _ = await page(database, AuditFilter(tenant=None), limit=10)
    assert [row.position for row in nobody] == [6]
    window = AuditFilter(tenant=ALL_TENANTS, since=parse_bound("2026-11-21"), until=parse_bound("2026-11-22"))
    assert [row.position async for row in rows(database, window)] == [4, 5]


async def test_an_entry_is_stored_as_the_canonical_text_its_hash_covers(
    database: FlakyDatabase, key: bytes | None
) -> None:
    await append_chain(database, bodies(2, tenant="acme", day="2026-11-20"), key)

    async with database.engine.connect() as connection:
        found = await connection.execute(
            select(audit_log.c.prev_hash, audit_log.c.hash, cast(audit_log.c.entry, Text)).order_by(
                audit_log.c.seq
            )
        )
        stored_rows = found.all()
    for prev_hash, digest, text in stored_rows:
        assert text.encode() == canonical(orjson.loads(text))
        assert digest == entry_hash(prev_hash, orjson.loads(text), key)
    first = await stored(database, 1)
    moment = first["occurred_at"]  # SQLite gives it back naive (in UTC)
    assert (moment if moment.tzinfo else moment.replace(tzinfo=UTC)) == datetime(2026, 11, 20, 12, tzinfo=UTC)
    assert first["request_id"] == first["entry"]["request_id"]
    assert first["tenant"] == "acme"


async def test_a_failed_batch_moves_neither_the_chain_nor_its_head(
    database: FlakyDatabase, key: bytes | None
) -> None:
    await chain(database, key, 2)
    batch = bodies(3)
    batch[2]["cost"] = 0.5  # an entry holds no floats: the batch fails after its first two are numbered

    with pytest.raises(TypeError, match="no floats"):
        await append_chain(database, batch, key)

    result = await verify(database, key)
    assert result.ok
    assert (result.head_seq, result.head_hash) == await head(database)
    assert result.head_seq == 2
    assert await append_chain(database, batch[:2], key) == 2
    assert (await verify(database, key)).head_seq == 4
