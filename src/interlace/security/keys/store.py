"""The keys' persistence: create, read, list, rotate and revoke rows of ``api_keys``.

Used by the admin API, ``interlace keys`` and the key cache's refreshes — never by a request's
authentication, which reads the cache. What the cache reads (a key by id, the keys changed since) is
plain SQL (:mod:`interlace.security.keys.rows`); the rest builds its statements with SQLAlchemy,
imported when an operator first changes or lists keys. A database failure is a
:class:`~interlace.core.errors.ServiceUnavailable` (503 ``database_unavailable``), never a stack trace.
"""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from interlace.core.errors import NotFound, RequestError, ServiceUnavailable
from interlace.security.keys.model import (
    ApiKey,
    IssuedKey,
    format_key,
    hash_secret,
    is_key_id,
    new_key_id,
    new_secret,
)
from interlace.security.keys.rows import api_key, changed_since, key_by_id
from interlace.store.database import is_database_error

if TYPE_CHECKING:
    from collections.abc import Iterator

    from interlace.security.keys.spec import KeySpec
    from interlace.store.database import Database

__all__ = ["KeyStore"]


@contextlib.contextmanager
def _database_errors() -> Iterator[None]:
    try:
        yield
    except Exception as exc:
        if not is_database_error(exc):
            raise
        raise ServiceUnavailable(
            f"the key database is unavailable ({type(exc).__name__}); try again shortly",
            code="database_unavailable",
        ) from None


class KeyStore:
    def __init__(self, database: Database) -> None:
        self.database = database

    async def create(self, spec: KeySpec, *, now: datetime | None = None) -> IssuedKey:
        now = now or datetime.now(UTC)
        key_id, secret = new_key_id(), new_secret()
        values: dict[str, Any] = {
            "id": key_id,
            "name": spec.name,
            "tenant": spec.tenant,
            "team": spec.team,
            "subject": spec.subject,
            "secret_hash": hash_secret(secret),
            "models": sorted(set(spec.models)) if spec.models is not None else None,
            "endpoints": sorted(set(spec.endpoints)) if spec.endpoints is not None else None,
            "rpm": spec.limits.rpm,
            "tpm": spec.limits.tpm,
            "budget_usd": spec.limits.budget_usd,
            "soft_budget_usd": spec.limits.soft_budget_usd,
            "budget_period": spec.limits.budget_period,
            "meta": dict(spec.metadata),
            "expires_at": spec.expiry(now),
            "created_at": now,
            "updated_at": now,
        }
        from sqlalchemy import insert  # noqa: PLC0415 - SQLAlchemy only for the operators' changes

        from interlace.store.keys_tables import api_keys  # noqa: PLC0415

        with _database_errors():
            async with self.database.begin() as connection:
                await connection.execute(insert(api_keys).values(**values))
        return IssuedKey(api_key(values), format_key(key_id, secret))

    async def get(self, key_id: str) -> ApiKey | None:
        if not is_key_id(key_id):
            return None
        with _database_errors():
            return await key_by_id(self.database, key_id)

    async def require(self, key_id: str) -> ApiKey:
        key = await self.get(key_id)
        if key is None:
            raise NotFound(f"no API key '{key_id}'", param="id", code="key_not_found")
        return key

    async def list_keys(
        self, *, tenant: str | None = None, team: str | None = None, include_revoked: bool = False
    ) -> list[ApiKey]:
        from sqlalchemy import select  # noqa: PLC0415 - SQLAlchemy only for the operators' changes

        from interlace.store.keys_tables import api_keys  # noqa: PLC0415

        query = select(api_keys).order_by(api_keys.c.tenant, api_keys.c.created_at, api_keys.c.id)
        if tenant is not None:
            query = query.where(api_keys.c.tenant == tenant)
        if team is not None:
            query = query.where(api_keys.c.team == team)
        if not include_revoked:
            query = query.where(api_keys.c.revoked_at.is_(None))
        with _database_errors():
            async with self.database.engine.connect() as connection:
                rows = (await connection.execute(query)).mappings().all()
        return [api_key(row) for row in rows]

    async def changed_since(self, since: datetime | None) -> list[ApiKey]:
        """Every key written at or after ``since`` (every key when None); raises what the driver raises."""
        return await changed_since(self.database, since)

    async def rotate(self, key_id: str, *, grace: timedelta = timedelta(0)) -> IssuedKey:
        """A new secret for ``key_id``; the current one keeps working for ``grace`` (0: stops now)."""
        now = datetime.now(UTC)
        current = await self.require(key_id)
        if current.revoked_at is not None:
            raise RequestError(
                f"API key '{key_id}' is revoked: create a new one", param="id", code="key_revoked"
            )
        secret = new_secret()
        changes: dict[str, Any] = {
            "secret_hash": hash_secret(secret),
            "previous_hash": current.secret_hash if grace > timedelta(0) else None,
            "previous_expires_at": now + grace if grace > timedelta(0) else None,
            "updated_at": now,
        }
        from sqlalchemy import update  # noqa: PLC0415 - SQLAlchemy only for the operators' changes

        from interlace.store.keys_tables import api_keys  # noqa: PLC0415

        with _database_errors():
            async with self.database.begin() as connection:
                await connection.execute(update(api_keys).where(api_keys.c.id == key_id).values(**changes))
        return IssuedKey(await self.require(key_id), format_key(key_id, secret))

    async def revoke(self, key_id: str) -> ApiKey:
        """Revoke ``key_id`` now (a key already revoked stays as it was)."""
        now = datetime.now(UTC)
        await self.require(key_id)
        from sqlalchemy import update  # noqa: PLC0415 - SQLAlchemy only for the operators' changes

        from interlace.store.keys_tables import api_keys  # noqa: PLC0415

        with _database_errors():
            async with self.database.begin() as connection:
                await connection.execute(
                    update(api_keys)
                    .where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None))
                    .values(revoked_at=now, previous_hash=None, previous_expires_at=None, updated_at=now)
                )
        return await self.require(key_id)
