"""Files, as the OpenAI Files API keeps them: batch inputs uploaded, batch outputs written.

A ``batch`` file is validated line by line when uploaded: each line a JSON object with a unique
``custom_id``, ``method: POST``, a ``url`` naming an operation jobs can carry, and a ``body`` that
operation accepts. The first bad line is a 400 naming its line number and field, before anything is
stored. Content is kept in the state database (``files.content``), read back whole.

Files are listed newest first (or oldest, ``order=asc``), by ``purpose``, a page at a time after a
file id; a file deleted while an unfinished batch reads it would lose lines, so that is a 409.
"""

from __future__ import annotations

import secrets
import time
from typing import TYPE_CHECKING, Any, Final

import orjson
from sqlalchemy import and_, delete, exists, insert, or_, select

from interlace.core.errors import Conflict, InterlaceError, RequestError
from interlace.store.jobs_tables import batches, files

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

    from interlace.jobs.operations import Executors
    from interlace.jobs.queue import TenantScope
    from interlace.jobs.transactions import Transactions

__all__ = ["MAX_LINES", "OPEN_BATCH_STATUSES", "Files", "file_object", "parse_batch_lines"]

MAX_LINES: Final = 50_000
"""Requests one batch file may hold (as OpenAI's)."""

PURPOSES: Final = frozenset({"batch", "batch_output", "user_data"})

OPEN_BATCH_STATUSES: Final = ("in_progress", "cancelling")
"""A batch in these still reads its input file."""


def new_file_id() -> str:
    return f"file-{secrets.token_hex(12)}"


def file_object(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "object": "file",
        "bytes": row.bytes,
        "created_at": int(row.created_at),
        "filename": row.filename,
        "purpose": row.purpose,
        "status": "processed",
        "status_details": None,
    }


def parse_batch_lines(content: bytes, executors: Executors) -> list[dict[str, Any]]:
    """The requests of a batch file; a 400 naming the first bad line."""
    lines: list[dict[str, Any]] = []
    seen: set[str] = set()
    for number, raw in enumerate(content.splitlines(), start=1):
        if not raw.strip():
            continue
        line = _line(raw, f"line {number}", executors)
        if line["custom_id"] in seen:
            raise _bad(
                f"line {number}: custom_id '{line['custom_id']}' is used twice.", "duplicate_custom_id"
            )
        seen.add(line["custom_id"])
        lines.append(line)
        if len(lines) > MAX_LINES:
            raise RequestError(f"a batch file holds at most {MAX_LINES} requests.", param="file")
    if not lines:
        raise _bad("the batch file holds no requests.")
    return lines


def _line(raw: bytes, where: str, executors: Executors) -> dict[str, Any]:
    try:
        line = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise _bad(f"{where} is not valid JSON: {exc}.") from None
    if not isinstance(line, dict):
        raise _bad(f"{where} must be a JSON object.")
    custom_id = line.get("custom_id")
    if not isinstance(custom_id, str) or not custom_id:
        raise _bad(f"{where}: 'custom_id' must be a non-empty string.")
    if line.get("method", "POST") != "POST":
        raise _bad(f"{where}: 'method' must be POST.")
    url = line.get("url")
    executor = executors.by_path(url) if isinstance(url, str) else None
    if executor is None:
        raise _bad(f"{where}: 'url' must be one of {', '.join(sorted(e.path for e in executors))}.")
    body = line.get("body")
    if not isinstance(body, dict):
        raise _bad(f"{where}: 'body' must be a JSON object.")
    request = executor.request_for(url, body) if isinstance(url, str) else None
    try:
        executor.decode(request if request is not None else body)
    except InterlaceError as exc:
        field = f" (body.{exc.param})" if exc.param else ""
        raise _bad(f"{where}{field}: {exc.message}") from None
    return line


def _bad(message: str, code: str = "invalid_jsonl") -> RequestError:
    return RequestError(message, param="file", code=code)


class Files:
    def __init__(self, tx: Transactions, executors: Executors) -> None:
        self.tx = tx
        self.executors = executors

    async def create(self, tenant: str, *, purpose: str, filename: str, content: bytes) -> dict[str, Any]:
        if purpose not in PURPOSES:
            raise RequestError(
                f"purpose '{purpose}' is not supported (purposes: {', '.join(sorted(PURPOSES))}).",
                param="purpose",
            )
        if purpose == "batch":
            parse_batch_lines(content, self.executors)
        async with self.tx.begin() as connection:
            return await self.write(connection, tenant, purpose=purpose, filename=filename, content=content)

    @staticmethod
    async def write(
        connection: AsyncConnection, tenant: str, *, purpose: str, filename: str, content: bytes
    ) -> dict[str, Any]:
        """Store a file within ``connection``'s transaction (a batch's output files)."""
        values = {
            "id": new_file_id(),
            "tenant": tenant,
            "purpose": purpose,
            "filename": filename,
            "bytes": len(content),
            "content": content,
            "created_at": time.time(),
        }
        await connection.execute(insert(files).values(**values))
        return file_object(_Row(values))

    async def get(self, file_id: str, scope: TenantScope) -> dict[str, Any] | None:
        columns = [c for c in files.columns if c.name != "content"]
        async with self.tx.connect() as connection:
            row = (await connection.execute(select(*columns).where(*_where(file_id, scope)))).first()
        return file_object(row) if row is not None else None

    async def list(
        self,
        scope: TenantScope,
        *,
        purpose: str | None = None,
        after: str | None = None,
        limit: int = 10_000,
        ascending: bool = False,
    ) -> list[dict[str, Any]]:
        """Up to ``limit`` files of ``scope``, newest (oldest if ``ascending``) first, after ``after``."""
        columns = [c for c in files.columns if c.name != "content"]
        query = select(*columns)
        if scope is not None:
            query = query.where(files.c.tenant == scope)
        if purpose is not None:
            query = query.where(files.c.purpose == purpose)
        async with self.tx.connect() as connection:
            if after is not None:
                cursor = (
                    await connection.execute(select(files.c.created_at).where(*_where(after, scope)))
                ).scalar()
                if cursor is None:
                    raise RequestError(f"No file with id '{after}'.", param="after", code="file_not_found")
                if ascending:
                    later = or_(
                        files.c.created_at > cursor, and_(files.c.created_at == cursor, files.c.id > after)
                    )
                    query = query.where(later)
                else:
                    earlier = or_(
                        files.c.created_at < cursor, and_(files.c.created_at == cursor, files.c.id < after)
                    )
                    query = query.where(earlier)
            order = (
                (files.c.created_at.asc(), files.c.id.asc())
                if ascending
                else (files.c.created_at.desc(), files.c.id.desc())
            )
            rows = (await connection.execute(query.order_by(*order).limit(limit))).all()
        return [file_object(row) for row in rows]

    async def delete(self, file_id: str, scope: TenantScope) -> bool:
        """Delete a file of ``scope``; False if there is none; a 409 while an unfinished batch reads it."""
        in_use = exists().where(batches.c.input_file_id == file_id, batches.c.status.in_(OPEN_BATCH_STATUSES))
        async with self.tx.begin() as connection:
            # one statement: a batch that starts reading the file meanwhile keeps it
            deleted = await connection.execute(delete(files).where(*_where(file_id, scope), ~in_use))
            if deleted.rowcount:
                return True
            found = (await connection.execute(select(files.c.id).where(*_where(file_id, scope)))).first()
        if found is None:
            return False
        raise Conflict(
            f"file {file_id} is the input of an unfinished batch; cancel the batch or wait until it ends.",
            param="file_id",
            code="file_in_use",
        )

    async def content(self, file_id: str, scope: TenantScope) -> bytes | None:
        async with self.tx.connect() as connection:
            value = (
                await connection.execute(select(files.c.content).where(*_where(file_id, scope)))
            ).scalar()
        return bytes(value) if value is not None else None


def _where(file_id: str, scope: TenantScope) -> list[Any]:
    where = [files.c.id == file_id]
    if scope is not None:
        where.append(files.c.tenant == scope)
    return where


class _Row:
    def __init__(self, values: dict[str, Any]) -> None:
        self.__dict__.update(values)
