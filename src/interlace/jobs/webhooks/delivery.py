"""Deliver webhook messages: signed, at least once, retried on a schedule, every attempt logged.

A worker calls :meth:`Deliverer.deliver_due` in its loop. It leases due messages (as jobs are
leased, so two workers never send the same message at once), POSTs each, logs the attempt in
``webhook_attempts``, and marks the message ``delivered`` on a 2xx, else schedules the next attempt
from ``jobs.webhooks.retry_schedule``; past the schedule's end it is ``failed`` (a manual redeliver
still works). Every attempt of a message carries the same ``webhook-id``; a worker killed between a
receiver's 2xx and the commit means one more delivery of the same id, never a lost one.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import orjson
from sqlalchemy import and_, insert, or_, select, update

from interlace.core.errors import RequestError
from interlace.jobs.webhooks.signing import signed_headers
from interlace.store.jobs_tables import webhook_attempts, webhook_messages

if TYPE_CHECKING:
    from collections.abc import Sequence

    import httpx

    from interlace.config.jobs import WebhooksConfig
    from interlace.jobs.transactions import Transactions
    from interlace.jobs.webhooks.secret_store import WebhookSecrets
    from interlace.jobs.webhooks.targets import TargetPolicy

__all__ = ["Deliverer"]

_LEASE = 60.0


class Deliverer:
    def __init__(
        self,
        tx: Transactions,
        secrets: WebhookSecrets,
        targets: TargetPolicy,
        config: WebhooksConfig,
    ) -> None:
        self.tx = tx
        self.secrets = secrets
        self.targets = targets
        self.schedule: Sequence[float] = tuple(config.retry_schedule)
        self._timeout = config.timeout
        self._client: httpx.AsyncClient | None = None  # made for the first delivery (see _http)

    def _http(self) -> httpx.AsyncClient:
        """The HTTP client, made on first use.

        A gateway that never sends a webhook never pays for importing httpx and building its TLS
        context (~50 ms of start-up).
        """
        if self._client is None:
            import httpx  # noqa: PLC0415 - deferred on purpose, see above

            self._client = httpx.AsyncClient(timeout=self._timeout, follow_redirects=False, trust_env=False)
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def deliver_due(self, owner: str, *, limit: int = 20) -> int:
        """Send up to ``limit`` due messages; how many were attempted."""
        messages = await self._claim(owner, limit)
        for message in messages:
            await self._attempt(message, owner, manual=False)
        return len(messages)

    async def _claim(self, owner: str, limit: int) -> list[dict[str, Any]]:
        now = time.time()
        due = or_(
            and_(webhook_messages.c.status == "pending", webhook_messages.c.next_attempt_at <= now),
            and_(webhook_messages.c.status == "sending", webhook_messages.c.lease_expires < now),
        )
        chosen = (
            select(webhook_messages.c.id)
            .where(due)
            .order_by(webhook_messages.c.next_attempt_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        async with self.tx.begin() as connection:
            rows = (
                await connection.execute(
                    update(webhook_messages)
                    .where(webhook_messages.c.id.in_(chosen))
                    .values(status="sending", lease_owner=owner, lease_expires=now + _LEASE)
                    .returning(*webhook_messages.columns)
                )
            ).all()
        return [dict(row._mapping) for row in rows]  # noqa: SLF001 - SQLAlchemy's public row mapping

    async def _attempt(self, message: dict[str, Any], owner: str, *, manual: bool) -> None:
        import httpx  # noqa: PLC0415 - loaded by _http() before any request can fail

        body = orjson.dumps(message["payload"])
        started = time.time()
        status_code: int | None = None
        error: str | None = None
        try:
            await self.targets.check(message["url"])
            secret = await self.secrets.get(message["tenant"])
            headers = signed_headers(secret, message["id"], int(started), body)
            response = await self._http().post(message["url"], content=body, headers=headers)
            status_code = response.status_code
            if not 200 <= status_code < 300:  # noqa: PLR2004
                error = f"receiver answered {status_code}"
        except RequestError as exc:
            error = exc.message
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"[:1000]
        finished = time.time()
        attempts = int(message["attempts"]) + 1
        values: dict[str, Any] = {"attempts": attempts, "lease_owner": None, "lease_expires": None}
        if error is None:
            values.update(status="delivered", delivered_at=finished)
        elif attempts <= len(self.schedule):
            values.update(status="pending", next_attempt_at=finished + self.schedule[attempts - 1])
        else:
            values.update(status="failed")
        async with self.tx.begin() as connection:
            await connection.execute(
                insert(webhook_attempts).values(
                    message_id=message["id"],
                    attempted_at=started,
                    status_code=status_code,
                    error=error,
                    duration_ms=int((finished - started) * 1000),
                    manual=manual,
                )
            )
            await connection.execute(
                update(webhook_messages)
                .where(webhook_messages.c.id == message["id"], webhook_messages.c.lease_owner == owner)
                .values(**values)
            )

    async def redeliver(self, job_id: str, tenant: str | None) -> dict[str, Any] | None:
        """Send a job's latest message again now (same ``webhook-id``); its log after, or None."""
        query = select(webhook_messages).where(webhook_messages.c.job_id == job_id)
        if tenant is not None:
            query = query.where(webhook_messages.c.tenant == tenant)
        owner = f"redeliver-{time.time_ns()}"
        async with self.tx.begin() as connection:
            row = (await connection.execute(query.order_by(webhook_messages.c.created_at.desc()))).first()
            if row is None:
                return None
            await connection.execute(
                update(webhook_messages)
                .where(webhook_messages.c.id == row.id)
                .values(status="sending", lease_owner=owner, lease_expires=time.time() + _LEASE)
            )
        await self._attempt(dict(row._mapping), owner, manual=True)  # noqa: SLF001
        return await self.log(job_id, tenant)

    async def log(self, job_id: str, tenant: str | None) -> dict[str, Any]:
        """A job's webhook messages and every delivery attempt of each, oldest first."""
        query = select(webhook_messages).where(webhook_messages.c.job_id == job_id)
        if tenant is not None:
            query = query.where(webhook_messages.c.tenant == tenant)
        async with self.tx.connect() as connection:
            messages = (await connection.execute(query.order_by(webhook_messages.c.created_at))).all()
            ids = [m.id for m in messages]
            attempts = (
                await connection.execute(
                    select(webhook_attempts)
                    .where(webhook_attempts.c.message_id.in_(ids))
                    .order_by(webhook_attempts.c.seq)
                )
            ).all()
        return {
            "object": "list",
            "data": [
                {
                    "object": "webhook.message",
                    "id": m.id,
                    "event": m.event,
                    "url": m.url,
                    "status": m.status,
                    "attempts": [
                        {
                            "attempted_at": a.attempted_at,
                            "status_code": a.status_code,
                            "error": a.error,
                            "duration_ms": a.duration_ms,
                            "manual": a.manual,
                        }
                        for a in attempts
                        if a.message_id == m.id
                    ],
                    "created_at": int(m.created_at),
                    "delivered_at": None if m.delivered_at is None else int(m.delivered_at),
                }
                for m in messages
            ],
        }
