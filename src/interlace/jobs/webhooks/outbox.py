"""The webhook outbox: a job's terminal transition writes its message in the same transaction.

So a message exists exactly when the transition committed — never for a result that was rolled
back — and once (a transition names the lease owner, so only one worker's commits). Its id is the
``webhook-id`` of every delivery attempt, manual redeliveries included, so receivers can de-duplicate.
"""

from __future__ import annotations

import secrets
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import insert

from interlace.store.jobs_tables import webhook_messages

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

    from interlace.jobs.queue import Job

__all__ = ["add_message", "new_message_id", "webhook_payload"]


def new_message_id() -> str:
    return f"msg_{secrets.token_hex(12)}"


def webhook_payload(job: Job, now: float) -> dict[str, Any]:
    """The event body (Standard Webhooks shape: ``type``, ``timestamp``, ``data``)."""
    return {
        "type": f"job.{job.status}",
        "timestamp": datetime.fromtimestamp(now, UTC).isoformat().replace("+00:00", "Z"),
        "data": job.to_api(),
    }


async def add_message(connection: AsyncConnection, job: Job) -> str | None:
    """Queue the webhook of ``job``'s terminal state, when it has a callback; its message id."""
    if job.callback_url is None:
        return None
    now = time.time()
    message_id = new_message_id()
    await connection.execute(
        insert(webhook_messages).values(
            id=message_id,
            job_id=job.id,
            tenant=job.tenant,
            event=f"job.{job.status}",
            url=job.callback_url,
            payload=webhook_payload(job, now),
            status="pending",
            attempts=0,
            next_attempt_at=now,
            created_at=now,
        )
    )
    return message_id
