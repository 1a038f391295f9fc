"""The pgoutput decoder: every message type, built byte by byte and read from the real server."""

from __future__ import annotations

import struct
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from tests.support.flows_postgres import connect, require_logical, schema_fixture, unique

from interlace.flows.connectors.postgres.pgoutput import (
    Begin,
    Commit,
    Delete,
    Insert,
    LogicalMessage,
    Origin,
    PgOutputDecoder,
    PgOutputError,
    Relation,
    Truncate,
    TypeInfo,
    Update,
    format_lsn,
    text_to_json,
)

WHEN = datetime(2026, 1, 1, 12, 30, tzinfo=UTC)
TS = int((WHEN - datetime(2000, 1, 1, tzinfo=UTC)).total_seconds()) * 1_000_000  # µs after 2000-01-01


def s(text: str) -> bytes:
    return text.encode() + b"\x00"


def relation_bytes(oid: int = 16384) -> bytes:
    columns = [(1, "id", 23), (0, "name", 25), (0, "doc", 3802)]
    body = struct.pack(">I", oid) + s("public") + s("t") + b"d" + struct.pack(">h", len(columns))
    for flags, name, type_oid in columns:
        body += bytes([flags]) + s(name) + struct.pack(">Ii", type_oid, -1)
    return b"R" + body


def tuple_bytes(*values: bytes | str | None) -> bytes:
    out = struct.pack(">h", len(values))
    for value in values:
        if value is None:
            out += b"n"
        elif value == "unchanged":
            out += b"u"
        else:
            assert isinstance(value, bytes)
            out += b"t" + struct.pack(">i", len(value)) + value
    return out


def test_every_message_type() -> None:
    d = PgOutputDecoder()
    begin = d.decode(b"B" + struct.pack(">qqI", 0x16B374D848, TS, 7954))
    assert begin == Begin(final_lsn=0x16B374D848, commit_ts=WHEN, xid=7954)
    relation = d.decode(relation_bytes())
    assert isinstance(relation, Relation)
    assert relation.qualified_name == "public.t"
    assert [(c.name, c.type_oid, c.is_key) for c in relation.columns] == [
        ("id", 23, True),
        ("name", 25, False),
        ("doc", 3802, False),
    ]
    insert = d.decode(b"I" + struct.pack(">I", 16384) + b"N" + tuple_bytes(b"1", b"a", b'{"k": [1]}'))
    assert insert == Insert(relation, {"id": 1, "name": "a", "doc": {"k": [1]}})
    update = d.decode(
        b"U"
        + struct.pack(">I", 16384)
        + b"K"
        + tuple_bytes(b"1", None, None)
        + b"N"
        + tuple_bytes(b"2", b"b", "unchanged")
    )
    assert update == Update(relation, {"id": 2, "name": "b"}, key={"id": 1})
    full = d.decode(
        b"U"
        + struct.pack(">I", 16384)
        + b"O"
        + tuple_bytes(b"2", b"b", None)
        + b"N"
        + tuple_bytes(b"2", b"c", None)
    )
    assert isinstance(full, Update)
    assert full.old == {"id": 2, "name": "b", "doc": None}
    delete = d.decode(b"D" + struct.pack(">I", 16384) + b"K" + tuple_bytes(b"2", None, None))
    assert delete == Delete(relation, key={"id": 2})
    truncate = d.decode(b"T" + struct.pack(">ib", 1, 3) + struct.pack(">I", 16384))
    assert truncate == Truncate((relation,), cascade=True, restart_identity=True)
    assert d.decode(b"Y" + struct.pack(">I", 99999) + s("public") + s("mood")) == TypeInfo(
        99999, "public", "mood"
    )
    assert d.decode(b"O" + struct.pack(">q", 42) + s("upstream")) == Origin(42, "upstream")
    message = d.decode(b"M" + bytes([1]) + struct.pack(">q", 77) + s("app") + struct.pack(">i", 3) + b"abc")
    assert message == LogicalMessage(transactional=True, lsn=77, prefix="app", content=b"abc")
    commit = d.decode(b"C" + bytes([0]) + struct.pack(">qqq", 100, 200, TS))
    assert isinstance(commit, Commit)
    assert (commit.commit_lsn, commit.end_lsn) == (100, 200)


@pytest.mark.parametrize(
    "data",
    [b"Z", b"B\x00", b"I" + struct.pack(">I", 1) + b"N", b"R" + struct.pack(">I", 1) + b"public"],
)
def test_malformed_messages_are_errors(data: bytes) -> None:
    with pytest.raises(PgOutputError):
        PgOutputDecoder().decode(data)


@pytest.mark.parametrize(
    ("text", "oid", "expected"),
    [
        ("t", 16, True),
        ("f", 16, False),
        ("-32768", 21, -32768),
        ("9223372036854775807", 20, 9223372036854775807),
        ("1.5", 701, 1.5),
        ("NaN", 701, "NaN"),
        ("12345678901234567890.000001", 1700, "12345678901234567890.000001"),
        ('{"a": null}', 114, {"a": None}),
        ("\\x6869", 17, "aGk="),
        ("{1,NULL,3}", 1007, [1, None, 3]),
        ('{a,"b,c","d\\"e",NULL}', 1009, ["a", "b,c", 'd"e', None]),
        ("{}", 1009, []),
        ("{t,f}", 1000, [True, False]),
        ("2026-11-27 11:50:00.123+00", 1184, "2026-11-27 11:50:00.123+00"),
        ("0c6e1d2f-0000-4000-8000-000000000000", 2950, "0c6e1d2f-0000-4000-8000-000000000000"),
    ],
)
def test_text_values_to_json(text: str, oid: int, expected: Any) -> None:
    assert text_to_json(text, oid) == expected


def test_lsn_text() -> None:
    assert format_lsn(0x16B374D848) == "16/B374D848"


@pytest.fixture
async def schema() -> AsyncIterator[str]:
    async for name in schema_fixture():
        yield name


async def test_decodes_what_the_server_sends(schema: str) -> None:
    slot = unique("flows_slot")
    async with await connect() as conn:
        await require_logical(conn)
        await conn.execute(f"""CREATE TYPE "{schema}".mood AS ENUM ('ok', 'sad')""")
        await conn.execute(
            f'CREATE TABLE "{schema}".t (id bigint PRIMARY KEY, flag bool, f float8, n numeric, b bytea, '
            f'ts timestamptz, tags text[], m "{schema}".mood)'
        )
        await conn.execute(f'ALTER TABLE "{schema}".t REPLICA IDENTITY FULL')
        await conn.execute(f'CREATE PUBLICATION "{slot}" FOR TABLE "{schema}".t')
        await conn.execute("SET TimeZone = 'UTC'")
        await conn.execute("SELECT pg_create_logical_replication_slot(%s, 'pgoutput')", (slot,))
        try:
            await conn.execute(
                f"""INSERT INTO "{schema}".t VALUES (1, true, 0.25, 3.10, '\\x0102', """
                """'2026-01-02 03:04:05+00', '{"x y",z}', 'ok')"""
            )
            await conn.execute(f"""UPDATE "{schema}".t SET m = 'sad' WHERE id = 1""")
            await conn.execute(f'DELETE FROM "{schema}".t')
            await conn.execute(f'TRUNCATE "{schema}".t')
            await conn.execute("SELECT pg_logical_emit_message(true, 'interlace', 'hello')")
            rows = await (
                await conn.execute(
                    "SELECT data FROM pg_logical_slot_peek_binary_changes(%s, NULL, NULL, "
                    "'proto_version', '1', 'publication_names', %s, 'messages', 'true')",
                    (slot, slot),
                )
            ).fetchall()
        finally:
            await conn.execute("SELECT pg_drop_replication_slot(%s)", (slot,))
            await conn.execute(f'DROP PUBLICATION "{slot}"')
    decoder = PgOutputDecoder()
    decoded = [decoder.decode(data) for (data,) in rows]
    kinds = [type(item).__name__ for item in decoded]
    for kind in (
        "Begin",
        "Relation",
        "TypeInfo",
        "Insert",
        "Update",
        "Delete",
        "Truncate",
        "LogicalMessage",
        "Commit",
    ):
        assert kind in kinds
    insert = next(item for item in decoded if isinstance(item, Insert))
    assert insert.new == {
        "id": 1,
        "flag": True,
        "f": 0.25,
        "n": "3.10",
        "b": "AQI=",
        "ts": "2026-01-02 03:04:05+00",
        "tags": ["x y", "z"],
        "m": "ok",
    }
    update = next(item for item in decoded if isinstance(item, Update))
    assert update.old is not None
    assert (update.old["m"], update.new["m"]) == ("ok", "sad")
    delete = next(item for item in decoded if isinstance(item, Delete))
    assert delete.old is not None
    assert delete.old["id"] == 1
    truncate = next(item for item in decoded if isinstance(item, Truncate))
    assert [r.qualified_name for r in truncate.relations] == [f"{schema}.t"]
    message = next(item for item in decoded if isinstance(item, LogicalMessage))
    assert (message.prefix, message.content) == ("interlace", b"hello")
    assert next(item for item in decoded if isinstance(item, TypeInfo)).name == "mood"
