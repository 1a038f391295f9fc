"""Each tenant's webhook signing secret, generated on first use and kept in the state database."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError

from interlace.jobs.webhooks.signing import new_secret
from interlace.store.jobs_tables import webhook_secrets

if TYPE_CHECKING:
    from interlace.jobs.transactions import Transactions

__all__ = ["WebhookSecrets"]


class WebhookSecrets:
    def __init__(self, tx: Transactions) -> None:
        self.tx = tx

    async def get(self, tenant: str) -> str:
        """The tenant's secret (``''`` is the operator's), created the first time it is asked for."""
        found = await self._read(tenant)
        if found is not None:
            return found
        try:
            async with self.tx.begin() as connection:
                await connection.execute(
                    insert(webhook_secrets).values(tenant=tenant, secret=new_secret(), created_at=time.time())
                )
        except IntegrityError:
            pass  # another process created it first: use theirs
        found = await self._read(tenant)
        if found is None:  # pragma: no cover - the row was just written
            msg = f"webhook secret of tenant {tenant!r} vanished"
            raise RuntimeError(msg)
        return found

    async def _read(self, tenant: str) -> str | None:
        async with self.tx.connect() as connection:
            value = (
                await connection.execute(
                    select(webhook_secrets.c.secret).where(webhook_secrets.c.tenant == tenant)
                )
            ).scalar()
        return str(value) if value is not None else None
