"""Batches, as the OpenAI Batch API runs them: every line of the input file is a job.

Creating a batch stores the batch and one queued job per line in one transaction (so a batch is
never half-accepted). Workers run the lines like any job — through the gate (rate limits, quotas,
budgets) and the router, with retries and backoff for 429s and 5xx — and each line's terminal
transition counts it in ``request_counts``. The worker that ends a batch's last line finalizes it:
one conditional ``UPDATE`` moves it to ``finalizing`` (so only one does), and in the same transaction
the output file (succeeded lines) and error file (failed, dead and cancelled lines) are written in
input order and the batch is marked ``completed`` (``cancelled`` after a cancel). Every line is in
exactly one of the two files.
"""

from __future__ import annotations

import secrets
import time
from typing import TYPE_CHECKING, Any, Final

import orjson
from sqlalchemy import and_, exists, insert, select, update

from interlace.core.errors import Conflict, RequestError
from interlace.jobs.files import OPEN_BATCH_STATUSES, Files, parse_batch_lines
from interlace.jobs.principals import principal_to_dict, tenant_key
from interlace.jobs.queue import ACTIVE, NewJob
from interlace.jobs.store import job_values
from interlace.store.jobs_tables import batches, jobs

if TYPE_CHECKING:
    from interlace.core.principal import Principal
    from interlace.jobs.operations import Executors
    from interlace.jobs.queue import TenantScope
    from interlace.jobs.transactions import Transactions

__all__ = ["Batches", "batch_object"]

WINDOWS: Final = {"24h": 86_400.0}
_OPEN: Final = OPEN_BATCH_STATUSES


def new_batch_id() -> str:
    return f"batch_{secrets.token_hex(12)}"


def batch_object(row: Any) -> dict[str, Any]:
    def stamp(value: float | None) -> int | None:
        return None if value is None else int(value)

    return {
        "id": row.id,
        "object": "batch",
        "endpoint": row.endpoint,
        "errors": None,
        "input_file_id": row.input_file_id,
        "completion_window": row.completion_window,
        "status": row.status,
        "output_file_id": row.output_file_id,
        "error_file_id": row.error_file_id,
        "created_at": int(row.created_at),
        "in_progress_at": stamp(row.in_progress_at),
        "expires_at": stamp(row.expires_at),
        "finalizing_at": stamp(row.finalizing_at),
        "completed_at": stamp(row.completed_at),
        "failed_at": None,
        "expired_at": None,
        "cancelling_at": stamp(row.cancelling_at),
        "cancelled_at": stamp(row.cancelled_at),
        "request_counts": {"total": row.total, "completed": row.completed, "failed": row.failed},
        "metadata": row.metadata,
    }


class Batches:
    def __init__(self, tx: Transactions, executors: Executors, files: Files, *, max_attempts: int) -> None:
        self.tx = tx
        self.executors = executors
        self.files = files
        self.max_attempts = max_attempts

    async def create(
        self,
        principal: Principal,
        *,
        input_file_id: str,
        endpoint: str,
        completion_window: str,
        metadata: dict[str, str] | None,
    ) -> dict[str, Any]:
        tenant = tenant_key(principal)
        scope = None if principal.is_operator else tenant
        if completion_window not in WINDOWS:
            raise RequestError("completion_window must be '24h'.", param="completion_window")
        executor = self.executors.by_path(endpoint)
        if executor is None:
            paths = ", ".join(sorted(e.path for e in self.executors))
            raise RequestError(f"endpoint must be one of {paths}.", param="endpoint")
        content = await self.files.content(input_file_id, scope)
        if content is None:
            raise RequestError(
                f"No file with id '{input_file_id}'.", param="input_file_id", code="file_not_found"
            )
        lines = parse_batch_lines(content, self.executors)
        for number, line in enumerate(lines, start=1):
            if line["url"] != endpoint:
                raise RequestError(
                    f"request {number} ({line['custom_id']}) is for {line['url']}, "
                    f"not the batch's {endpoint}.",
                    param="input_file_id",
                )
        now = time.time()
        batch_id = new_batch_id()
        stored = principal_to_dict(principal)
        requests = [executor.request_for(endpoint, line["body"]) or line["body"] for line in lines]
        rows = [
            job_values(
                NewJob(
                    tenant=tenant,
                    principal=stored,
                    operation=executor.name,
                    model=executor.decode(request).model,
                    request=request,
                    max_attempts=self.max_attempts,
                    metadata={"custom_id": line["custom_id"]},
                    batch_id=batch_id,
                    batch_index=index,
                ),
                now,
            )
            for index, (line, request) in enumerate(zip(lines, requests, strict=True))
        ]
        values = {
            "id": batch_id,
            "tenant": tenant,
            "endpoint": endpoint,
            "input_file_id": input_file_id,
            "completion_window": completion_window,
            "status": "in_progress",
            "total": len(rows),
            "completed": 0,
            "failed": 0,
            "metadata": metadata,
            "created_at": now,
            "in_progress_at": now,
            "expires_at": now + WINDOWS[completion_window],
        }
        async with self.tx.begin() as connection:
            await connection.execute(insert(batches).values(**values))
            for start in range(0, len(rows), 500):
                await connection.execute(insert(jobs), rows[start : start + 500])
        return await self._object(batch_id)

    async def get(self, batch_id: str, scope: TenantScope) -> dict[str, Any] | None:
        query = select(batches).where(batches.c.id == batch_id)
        if scope is not None:
            query = query.where(batches.c.tenant == scope)
        async with self.tx.connect() as connection:
            row = (await connection.execute(query)).first()
        return batch_object(row) if row is not None else None

    async def list(
        self, scope: TenantScope, *, after: str | None = None, limit: int = 20
    ) -> list[dict[str, Any]]:
        query = select(batches)
        if scope is not None:
            query = query.where(batches.c.tenant == scope)
        async with self.tx.connect() as connection:
            if after is not None:
                cursor = (
                    await connection.execute(select(batches.c.created_at).where(batches.c.id == after))
                ).scalar()
                if cursor is not None:
                    query = query.where(batches.c.created_at < cursor)
            rows = (await connection.execute(query.order_by(batches.c.created_at.desc()).limit(limit))).all()
        return [batch_object(row) for row in rows]

    async def cancel(self, batch_id: str, scope: TenantScope) -> dict[str, Any] | None:
        found = await self.get(batch_id, scope)
        if found is None:
            return None
        if found["status"] not in _OPEN:
            raise Conflict(
                f"batch {batch_id} is {found['status']}; only an unfinished batch can be cancelled."
            )
        now = time.time()
        async with self.tx.begin() as connection:
            await connection.execute(
                update(batches)
                .where(batches.c.id == batch_id, batches.c.status == "in_progress")
                .values(status="cancelling", cancelling_at=now)
            )
            await connection.execute(
                update(jobs)
                .where(jobs.c.batch_id == batch_id, jobs.c.status == "queued")
                .values(status="cancelled", finished_at=now)
            )
        await self.finalize_if_done(batch_id)
        return await self._object(batch_id)

    async def finalize_if_done(self, batch_id: str) -> bool:
        """Write the output and error files when no line is left to run; True if this call did."""
        now = time.time()
        unfinished = exists().where(jobs.c.batch_id == batch_id, jobs.c.status.in_(ACTIVE))
        async with self.tx.begin() as connection:
            row = (
                await connection.execute(
                    update(batches)
                    .where(and_(batches.c.id == batch_id, batches.c.status.in_(_OPEN), ~unfinished))
                    .values(finalizing_at=now)
                    .returning(batches.c.status, batches.c.tenant)
                )
            ).first()
            if row is None:
                return False
            lines = (
                await connection.execute(
                    select(jobs.c.id, jobs.c.status, jobs.c.result, jobs.c.error, jobs.c.metadata)
                    .where(jobs.c.batch_id == batch_id)
                    .order_by(jobs.c.batch_index)
                )
            ).all()
            output: list[bytes] = []
            errors: list[bytes] = []
            for line in lines:
                (output if line.status == "succeeded" else errors).append(orjson.dumps(_output_line(line)))
            ids: dict[str, Any] = {"output_file_id": None, "error_file_id": None}
            for key, chunk, name in (
                ("output_file_id", output, "output"),
                ("error_file_id", errors, "errors"),
            ):
                if chunk:
                    stored = await Files.write(
                        connection,
                        row.tenant,
                        purpose="batch_output",
                        filename=f"{batch_id}_{name}.jsonl",
                        content=b"\n".join(chunk) + b"\n",
                    )
                    ids[key] = stored["id"]
            cancelled = row.status == "cancelling"
            await connection.execute(
                update(batches)
                .where(batches.c.id == batch_id)
                .values(
                    status="cancelled" if cancelled else "completed",
                    **({"cancelled_at": now} if cancelled else {"completed_at": now}),
                    **ids,
                )
            )
        return True

    async def _object(self, batch_id: str) -> dict[str, Any]:
        found = await self.get(batch_id, None)
        if found is None:  # pragma: no cover - just written
            msg = f"batch {batch_id} vanished"
            raise RuntimeError(msg)
        return found


def _output_line(line: Any) -> dict[str, Any]:
    custom_id = (line.metadata or {}).get("custom_id")
    ident = f"batch_req_{line.id.removeprefix('job_')}"
    if line.status == "succeeded":
        response = {"status_code": 200, "request_id": line.id, "body": line.result}
        return {"id": ident, "custom_id": custom_id, "response": response, "error": None}
    if line.status == "cancelled":
        error = {"code": "batch_cancelled", "message": "the batch was cancelled before this request ran"}
        return {"id": ident, "custom_id": custom_id, "response": None, "error": error}
    error = dict(line.error or {})
    status = int(error.pop("status", 500))
    error.pop("dead_letter_reason", None)
    response = {"status_code": status, "request_id": line.id, "body": {"error": error}}
    return {"id": ident, "custom_id": custom_id, "response": response, "error": None}
