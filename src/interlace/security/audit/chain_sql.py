"""The audit chain's writes as plain SQL, per dialect (SQLite, Postgres), for :func:`append_chain`.

Fixed statements (prepared once per connection by the drivers), run through the driver
(:mod:`interlace.store.direct`), whose parameters are what the columns hold, so an appended batch
costs one statement per step and no per-row type processing:

* :func:`lock_head` — on SQLite a no-op ``UPDATE … RETURNING`` of the head row (the transaction
  holds the database's write lock already: ``BEGIN IMMEDIATE``); on Postgres ``SELECT … FOR UPDATE``;
* :func:`known_entries` — which of a batch's entry ids are logged already (the ids as one JSON array);
* :func:`insert_entries` — the new rows in one statement (SQLite: ``INSERT … SELECT FROM json_each(?)``,
  the rows as one JSON array; Postgres: ``INSERT … SELECT FROM unnest(…)``, an array parameter per
  column); an entry's JSON is its canonical text, stored as it is;
* :func:`move_head` — the head row to the newest entry.

On SQLite ``occurred_at`` is stored as SQLAlchemy stores a ``DateTime`` there
(:func:`~interlace.store.event_sql.sqlite_time`). The transaction around them is
:func:`interlace.security.audit.store.append_chain`'s.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

import orjson

from interlace.store.audit_columns import HEAD_ID
from interlace.store.event_sql import sqlite_time

if TYPE_CHECKING:
    from datetime import datetime

    from interlace.store.direct import Direct

__all__ = ["EntryRow", "insert_entries", "known_entries", "lock_head", "move_head"]

EntryRow = tuple[int, str, "datetime", str | None, str, str, str, str]
"""``(seq, entry_id, occurred_at, tenant, request_id, prev_hash, hash, entry)``; ``entry`` is JSON text."""

_SQLITE_LOCK_HEAD: Final = "UPDATE audit_head SET seq = seq WHERE id = ? RETURNING seq, hash"
_POSTGRES_LOCK_HEAD: Final = "SELECT seq, hash FROM audit_head WHERE id = $1 FOR UPDATE"

_SQLITE_KNOWN: Final = "SELECT entry_id FROM audit_log WHERE entry_id IN (SELECT value FROM json_each(?))"
_POSTGRES_KNOWN: Final = (
    "SELECT entry_id FROM audit_log WHERE entry_id IN (SELECT json_array_elements_text($1::json))"
)

_COLUMNS: Final = ("seq", "entry_id", "occurred_at", "tenant", "request_id", "prev_hash", "hash", "entry")
_POSTGRES_INSERT: Final = (
    "INSERT INTO audit_log (seq, entry_id, occurred_at, tenant, request_id, prev_hash, hash, entry) "
    "SELECT seq, entry_id, occurred_at, tenant, request_id, prev_hash, hash, entry::json "
    "FROM unnest($1::bigint[], $2::varchar[], $3::timestamptz[], $4::varchar[], $5::varchar[], "
    "$6::varchar[], $7::varchar[], $8::text[]) "
    "AS batch(seq, entry_id, occurred_at, tenant, request_id, prev_hash, hash, entry)"
)

_SQLITE_MOVE_HEAD: Final = "UPDATE audit_head SET seq = ?, hash = ? WHERE id = ?"
_POSTGRES_MOVE_HEAD: Final = "UPDATE audit_head SET seq = $1, hash = $2 WHERE id = $3"


async def lock_head(sql: Direct) -> tuple[int, str]:
    """Lock the chain head for this transaction and read it: the newest entry's ``seq`` and hash."""
    (head,) = await sql.fetch(_SQLITE_LOCK_HEAD if sql.sqlite else _POSTGRES_LOCK_HEAD, HEAD_ID)
    return int(head[0]), str(head[1])


async def known_entries(sql: Direct, entry_ids: list[str]) -> set[str]:
    """Those of ``entry_ids`` that are in the log already."""
    found = await sql.fetch(
        _SQLITE_KNOWN if sql.sqlite else _POSTGRES_KNOWN, orjson.dumps(entry_ids).decode()
    )
    return {str(row[0]) for row in found}


async def insert_entries(sql: Direct, rows: list[EntryRow]) -> None:
    """Insert the rows of new entries, in order."""
    if sql.sqlite:
        await sql.insert_rows(
            "audit_log", _COLUMNS, [(*row[:2], sqlite_time(row[2]), *row[3:]) for row in rows]
        )
    else:
        await sql.fetch(_POSTGRES_INSERT, *map(list, zip(*rows, strict=True)))


async def move_head(sql: Direct, seq: int, digest: str) -> None:
    """Point the head row at the newest entry."""
    await sql.fetch(_SQLITE_MOVE_HEAD if sql.sqlite else _POSTGRES_MOVE_HEAD, seq, digest, HEAD_ID)
