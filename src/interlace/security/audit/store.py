"""The audit log in the state database: append a batch to the chain, read it, verify it.

:func:`append_chain` is the only writer. In one transaction it locks the chain head (``SELECT … FOR
UPDATE`` on Postgres; on SQLite a no-op ``UPDATE`` of the head row takes the database's write lock
first), skips bodies whose ``entry_id`` is already logged, numbers and hashes the rest after the head,
inserts them and moves the head (plain SQL per dialect: :mod:`interlace.security.audit.chain_sql`).
Gateways sharing one Postgres therefore append one linear chain.

Reading: :func:`rows` (in chain order, filtered by tenant and time, page by page underneath),
:func:`page` (one page for ``GET /v1/audit``), :func:`verify` (the whole chain, against the head row)
and :func:`export_line` (an entry as one line of an export, with its chain fields). The readers build
their queries with SQLAlchemy and import it when they run: the writer, on every gateway's serving
path, does not need it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any, Final

from interlace.core.turns import in_turns
from interlace.security.audit.chain import (
    ALG_HMAC,
    ALG_SHA256,
    ChainProblem,
    ChainRow,
    ChainVerifier,
    Verification,
    canonical,
    link_hash,
)
from interlace.security.audit.chain_sql import EntryRow, insert_entries, known_entries, lock_head, move_head
from interlace.store.audit_columns import HEAD_ID
from interlace.store.direct import transaction

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Sequence

    from sqlalchemy import Select

    from interlace.store.database import Database

__all__ = [
    "ALL_TENANTS",
    "AuditFilter",
    "append_chain",
    "export_line",
    "head",
    "line_row",
    "page",
    "parse_bound",
    "rows",
    "verify",
]

_PAGE: Final = 1000
_KEY_LENGTH: Final = 128


class _AllTenants:
    def __repr__(self) -> str:
        return "ALL_TENANTS"


ALL_TENANTS: Final = _AllTenants()
"""A filter's ``tenant`` for every tenant's entries (the operator's view); ``None`` is no tenant."""


@dataclass(frozen=True, slots=True, kw_only=True)
class AuditFilter:
    """Which entries to read: one tenant's (``None``: those without a tenant) or all, in a time window."""

    tenant: str | _AllTenants | None = ALL_TENANTS
    since: datetime | None = None
    """Inclusive."""
    until: datetime | None = None
    """Exclusive."""


def parse_bound(value: str, *, end: bool = False) -> datetime:
    """An ISO date or date-time (UTC unless it says otherwise); a date as ``end`` is the next midnight.

    Raises ``ValueError`` for anything else.
    """
    text = value.strip()
    if len(text) == len("YYYY-MM-DD"):
        day = date.fromisoformat(text)
        return datetime.combine(day + timedelta(days=1) if end else day, time(), UTC)
    moment = datetime.fromisoformat(text)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _occurred_at(body: dict[str, Any]) -> datetime:
    try:
        return parse_bound(str(body.get("time")))
    except ValueError:
        return datetime.now(UTC)


async def append_chain(database: Database, bodies: Sequence[dict[str, Any]], key: bytes | None) -> int:
    """Chain ``bodies`` after the head, in order, in one transaction; returns how many were new.

    Each body needs a string ``entry_id``; one already logged (or repeated in the batch) is skipped.
    Entries are chained with HMAC-SHA256 when ``key`` is given, plain SHA-256 otherwise; each is stored
    as the canonical JSON its hash covers.
    """
    if not bodies:
        return 0
    alg = ALG_HMAC if key is not None else ALG_SHA256
    async with transaction(database) as sql:
        seq, prev = await lock_head(sql)
        known = await known_entries(sql, [str(body["entry_id"]) for body in bodies])
        values: list[EntryRow] = []
        async for body in in_turns(bodies):  # hashing thousands of entries must not stall requests
            entry_id = body["entry_id"]
            if entry_id in known:
                continue
            known.add(entry_id)
            seq += 1
            text = canonical({**body, "seq": seq, "alg": alg})
            digest = link_hash(prev, text, key)
            tenant = body.get("tenant")
            values.append(
                (
                    seq,
                    entry_id,
                    _occurred_at(body),
                    tenant[:_KEY_LENGTH] if isinstance(tenant, str) else None,
                    str(body.get("request_id") or "")[:_KEY_LENGTH],
                    prev,
                    digest,
                    text.decode(),
                )
            )
            prev = digest
        if values:
            await insert_entries(sql, values)
            await move_head(sql, seq, prev)
    return len(values)


async def head(database: Database) -> tuple[int, str]:
    """The chain head: the newest entry's sequence number and hash (``0`` and GENESIS when empty)."""
    from sqlalchemy import select  # noqa: PLC0415 - SQLAlchemy only for the reads (see the notes)

    from interlace.store.audit_tables import audit_head  # noqa: PLC0415

    async with database.engine.connect() as connection:
        seq, digest = (
            await connection.execute(
                select(audit_head.c.seq, audit_head.c.hash).where(audit_head.c.id == HEAD_ID)
            )
        ).one()
    return int(seq), str(digest)


def _filtered(query: Select[Any], where: AuditFilter) -> Select[Any]:
    from interlace.store.audit_tables import audit_log  # noqa: PLC0415 - SQLAlchemy only for the reads

    if not isinstance(where.tenant, _AllTenants):
        query = query.where(
            audit_log.c.tenant.is_(None) if where.tenant is None else audit_log.c.tenant == where.tenant
        )
    if where.since is not None:
        query = query.where(audit_log.c.occurred_at >= where.since)
    if where.until is not None:
        query = query.where(audit_log.c.occurred_at < where.until)
    return query


def _row(seq: Any, prev_hash: Any, digest: Any, entry: Any) -> ChainRow:
    return ChainRow(
        entry=entry if isinstance(entry, dict) else {}, prev_hash=prev_hash, hash=digest, position=int(seq)
    )


async def rows(
    database: Database, where: AuditFilter | None = None, *, after: int = 0, batch: int = _PAGE
) -> AsyncIterator[ChainRow]:
    """Entries in chain order (from sequence number ``after + 1``), read ``batch`` at a time."""
    from sqlalchemy import select  # noqa: PLC0415 - SQLAlchemy only for the reads (see the notes)

    from interlace.store.audit_tables import audit_log  # noqa: PLC0415

    columns = (audit_log.c.seq, audit_log.c.prev_hash, audit_log.c.hash, audit_log.c.entry)
    while True:
        query = _filtered(select(*columns), where or AuditFilter())
        query = query.where(audit_log.c.seq > after).order_by(audit_log.c.seq).limit(batch)
        async with database.engine.connect() as connection:
            found = (await connection.execute(query)).all()
        for found_row in found:
            yield _row(*found_row)
        if len(found) < batch:
            return
        after = int(found[-1][0])


async def page(
    database: Database, where: AuditFilter, *, limit: int, after: int = 0
) -> tuple[list[ChainRow], bool]:
    """Up to ``limit`` entries after sequence number ``after``, and whether there are more."""
    found = [row async for row in _limited(database, where, after=after, limit=limit + 1)]
    return found[:limit], len(found) > limit


async def _limited(
    database: Database, where: AuditFilter, *, after: int, limit: int
) -> AsyncIterator[ChainRow]:
    async for row in rows(database, where, after=after, batch=limit):
        yield row
        limit -= 1
        if limit == 0:
            return


async def verify(database: Database, key: bytes | None) -> Verification:
    """Verify the whole chain from entry 1, then its newest entry against the chain-head row."""
    verifier = ChainVerifier(key)
    async for row in rows(database):
        if not verifier.feed(row):
            break
    result = verifier.finish()
    if not result.ok:
        return result
    head_seq, head_hash = await head(database)
    problem: ChainProblem | None = None
    if head_seq > result.head_seq:
        missing = result.head_seq + 1
        problem = ChainProblem(
            missing,
            "deleted",
            f"the chain head records entry {head_seq}: entries {missing}-{head_seq} are missing",
        )
    elif head_seq < result.head_seq:
        problem = ChainProblem(
            head_seq + 1,
            "inserted",
            f"the chain head records entry {head_seq}: entries after it were not appended through it",
        )
    elif head_hash != result.head_hash:
        problem = ChainProblem(head_seq, "edited", f"entry {head_seq}'s hash differs from the chain head's")
    if problem is None:
        return result
    return Verification(
        checked=result.checked,
        head_seq=result.head_seq,
        head_hash=result.head_hash,
        problem=problem,
        unkeyed=result.unkeyed,
    )


def export_line(row: ChainRow) -> dict[str, Any]:
    """An entry as one line of an export: the entry's fields with ``prev_hash`` and ``hash``."""
    return {**row.entry, "prev_hash": row.prev_hash, "hash": row.hash}


def line_row(line: dict[str, Any]) -> ChainRow:
    """A line of an export as a row to verify (the inverse of :func:`export_line`)."""
    entry = {name: value for name, value in line.items() if name not in {"prev_hash", "hash"}}
    return ChainRow(entry=entry, prev_hash=str(line.get("prev_hash") or ""), hash=str(line.get("hash") or ""))
