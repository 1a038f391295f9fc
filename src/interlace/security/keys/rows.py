"""The reads of ``api_keys`` that authentication needs, as plain SQL through the driver.

The key cache looks a key up on a miss and reloads the keys changed since its last refresh, on every
gateway and for as long as it runs; both are one fixed statement per dialect through the database's
driver pool (:mod:`interlace.store.driver_pool`), so serving needs no SQLAlchemy. The rows come back
as SQLAlchemy would hand them: JSON columns parsed, times as datetimes (SQLite keeps them as
``YYYY-MM-DD HH:MM:SS.ffffff`` text in UTC, Postgres as ``timestamptz``). Writes and listings stay
with :class:`~interlace.security.keys.store.KeyStore`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

import orjson

from interlace.core.principal import Limits
from interlace.security.keys.model import ApiKey, utc
from interlace.store.event_sql import sqlite_time

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from interlace.store.database import Database

__all__ = ["api_key", "changed_since", "key_by_id"]

_COLUMNS: Final = (
    "id",
    "name",
    "tenant",
    "team",
    "subject",
    "secret_hash",
    "previous_hash",
    "previous_expires_at",
    "models",
    "endpoints",
    "rpm",
    "tpm",
    "budget_usd",
    "soft_budget_usd",
    "budget_period",
    "meta",
    "expires_at",
    "created_at",
    "updated_at",
    "revoked_at",
)
_JSON: Final = frozenset({"models", "endpoints", "meta"})
_TIMES: Final = frozenset({"previous_expires_at", "expires_at", "created_at", "updated_at", "revoked_at"})
_SELECT: Final = f"SELECT {', '.join(_COLUMNS)} FROM api_keys"  # noqa: S608 - the table's own columns


async def key_by_id(database: Database, key_id: str) -> ApiKey | None:
    """The key ``key_id``, or None; raises what the driver raises."""
    found = await _select(database, "id", key_id)
    return found[0] if found else None


async def changed_since(database: Database, since: datetime | None) -> list[ApiKey]:
    """Every key written at or after ``since`` (every key when None); raises what the driver raises."""
    if since is None:
        return await _select(database, None, None)
    return await _select(database, "updated_at", since.astimezone(UTC))


async def _select(database: Database, column: str | None, value: Any) -> list[ApiKey]:
    operator = "=" if column == "id" else ">="
    async with database.pool.connection() as connection:
        if database.pool.sqlite:
            if column is None:
                rows = await connection.execute_fetchall(_SELECT)
            else:
                bound = sqlite_time(value) if isinstance(value, datetime) else value
                rows = await connection.execute_fetchall(f"{_SELECT} WHERE {column} {operator} ?", (bound,))
        elif column is None:
            rows = await connection.fetch(_SELECT)
        else:
            rows = await connection.fetch(f"{_SELECT} WHERE {column} {operator} $1", value)
    return [api_key(_decoded(row)) for row in rows]


def _decoded(row: Sequence[Any]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name, value in zip(_COLUMNS, row, strict=True):
        if value is not None and name in _JSON and isinstance(value, (str, bytes)):
            values[name] = orjson.loads(value)
        elif value is not None and name in _TIMES and isinstance(value, str):
            values[name] = datetime.fromisoformat(value)
        else:
            values[name] = value
    return values


def api_key(row: Mapping[Any, Any]) -> ApiKey:
    """An :class:`ApiKey` from a row (or the values just inserted)."""
    models, endpoints = row["models"], row["endpoints"]
    created = utc(row["created_at"])
    return ApiKey(
        id=row["id"],
        name=row["name"],
        tenant=row["tenant"],
        team=row["team"],
        subject=row["subject"],
        secret_hash=row["secret_hash"],
        previous_hash=row.get("previous_hash"),
        previous_expires_at=utc(row.get("previous_expires_at")),
        models=frozenset(models) if models is not None else None,
        endpoints=frozenset(endpoints) if endpoints is not None else None,
        limits=Limits(
            rpm=row["rpm"],
            tpm=row["tpm"],
            budget_usd=row["budget_usd"],
            soft_budget_usd=row["soft_budget_usd"],
            budget_period=row["budget_period"],
        ),
        metadata=dict(row["meta"] or {}),
        expires_at=utc(row["expires_at"]),
        created_at=created or datetime.now(UTC),
        updated_at=utc(row["updated_at"]) or created or datetime.now(UTC),
        revoked_at=utc(row.get("revoked_at")),
    )
