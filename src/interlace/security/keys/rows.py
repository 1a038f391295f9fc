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
_BY_ID_SQLITE: Final = f"{_SELECT} WHERE id = ?"
_BY_ID_POSTGRES: Final = f"{_SELECT} WHERE id = $1"
_CHANGED_SQLITE: Final = f"{_SELECT} WHERE updated_at >= ?"
_CHANGED_POSTGRES: Final = f"{_SELECT} WHERE updated_at >= $1"


async def key_by_id(database: Database, key_id: str) -> ApiKey | None:
    """The key ``key_id``, or None; raises what the driver raises."""
    pool = database.pool
    found = await pool.fetch(_BY_ID_SQLITE if pool.sqlite else _BY_ID_POSTGRES, key_id)
    return api_key(_decoded(found[0])) if found else None


async def changed_since(database: Database, since: datetime | None) -> list[ApiKey]:
    """Every key written at or after ``since`` (every key when None); raises what the driver raises."""
    pool = database.pool
    if since is None:
        rows = await pool.fetch(_SELECT)
    elif pool.sqlite:
        rows = await pool.fetch(_CHANGED_SQLITE, sqlite_time(since.astimezone(UTC)))
    else:
        rows = await pool.fetch(_CHANGED_POSTGRES, since.astimezone(UTC))
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
