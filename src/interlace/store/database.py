"""The database handle: engine, migrations to head on start, a readiness ping."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import orjson
from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import insert, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from interlace import __version__
from interlace.core.errors import ConfigError
from interlace.store.tables import gateway_instances

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

__all__ = ["Database", "default_database_url"]

MIGRATIONS = Path(__file__).parent / "migrations"


def default_database_url(state_dir: str) -> str:
    return f"sqlite+aiosqlite:///{Path(state_dir).resolve() / 'interlace.db'}"


class Database:
    def __init__(self, url: str) -> None:
        self.url = url
        self.instance_id = uuid.uuid4().hex
        self._engine: AsyncEngine | None = None

    @property
    def engine(self) -> AsyncEngine:
        if self._engine is None:
            msg = "Database used before start()"
            raise RuntimeError(msg)
        return self._engine

    async def start(self) -> None:
        if self.url.startswith("sqlite"):
            database = self.url.split("///", 1)[-1]
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        # orjson for JSON columns: the event log serialises a record per request
        self._engine = create_async_engine(self.url, json_serializer=_dumps, json_deserializer=orjson.loads)
        try:
            async with self._engine.begin() as connection:
                await connection.run_sync(_upgrade_to_head)
        except (SQLAlchemyError, OSError) as exc:
            await self._engine.dispose()
            self._engine = None
            raise ConfigError(
                f"cannot open the state database {self.url!r}: {exc} — check state.database_url / state.dir"
            ) from None

    async def record_instance(self, *, host: str, port: int, config_source: str) -> None:
        async with self.engine.begin() as connection:
            await connection.execute(
                insert(gateway_instances).values(
                    id=self.instance_id,
                    host=host,
                    port=port,
                    version=__version__,
                    config_source=config_source,
                    started_at=datetime.now(UTC),
                )
            )

    async def ping(self) -> bool:
        try:
            async with self.engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
        except (SQLAlchemyError, OSError, RuntimeError):
            return False
        return True

    async def aclose(self) -> None:
        if self._engine is not None:
            await self._engine.dispose()
            self._engine = None


def _dumps(value: object) -> str:
    return orjson.dumps(value).decode()


def _upgrade_to_head(connection: Connection) -> None:
    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    command.upgrade(config, "head")
