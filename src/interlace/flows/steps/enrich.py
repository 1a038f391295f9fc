"""The ``enrich`` step: the online feature lookup — a row of a Postgres table or a Redis hash, by key.

``key`` is a JSONata expression over the payload (a field path such as ``customer.id`` is one); its
value is looked up and the result (an object) is written into the payload under ``into``. Postgres
values become JSON the way the CDC source gives them (``numeric`` as exact text, timestamps as ISO
8601 text, ``bytea`` as base64); a Redis hash gives its fields as strings. A missing row (or a key
that evaluates to nothing) follows ``on_missing``: ``skip`` passes the message on unchanged, ``null``
writes ``null`` under ``into``, ``fail`` fails the message (the flow's retries, then dead letters).
Results — misses included — are kept ``cache_ttl`` seconds in a small per-step LRU cache.

.. code-block:: yaml

    steps:
      - type: enrich
        key: customer_id
        into: customer
        postgres: {dsn: "postgresql://…/crm", table: public.customers, key_column: id, columns: [tier]}
      - type: enrich
        key: "'sku:' & sku"
        into: stock
        redis: {prefix: "stock:"}          # the top-level redis:, or its own url
        on_missing: fail
"""

from __future__ import annotations

import asyncio
import base64
import collections
import datetime as dt
import time
import uuid
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, field_validator, model_validator

from interlace.config._base import Strict
from interlace.config._flow_parts import StepConfigBase
from interlace.core.errors import ConfigError
from interlace.flows.connectors.postgres.config import check_identifier, qualified, quote_ident
from interlace.flows.steps.config import check_jsonata

if TYPE_CHECKING:
    from collections.abc import Sequence

    from interlace.flows.message import Message
    from interlace.flows.services import FlowServices

__all__ = ["EnrichMissing", "EnrichPostgres", "EnrichRedis", "EnrichStep", "EnrichStepConfig"]


class EnrichPostgres(Strict):
    dsn: str = "postgresql://postgres@127.0.0.1:5432/postgres"
    table: str
    key_column: str
    columns: list[str] | None = None
    """The columns returned (default: every column)."""

    @field_validator("table", "key_column")
    @classmethod
    def _names(cls, value: str) -> str:
        return check_identifier(value)

    @field_validator("columns")
    @classmethod
    def _columns(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else [check_identifier(c) for c in value]


class EnrichRedis(Strict):
    url: str | None = None
    """The Redis holding the hashes; default: the top-level ``redis:`` of the process."""
    prefix: str = ""
    """Prepended to the key's value to name the hash (``customer:`` + ``42``)."""


class EnrichStepConfig(StepConfigBase):
    """Look up a row by a key from the message and merge it into the payload."""

    type: Literal["enrich"]
    key: str = Field(description="JSONata over the payload giving the lookup key, e.g. 'customer.id'.")
    into: str = Field(description="The payload field the row is written to.")
    postgres: EnrichPostgres | None = None
    redis: EnrichRedis | None = None
    on_missing: Literal["skip", "null", "fail"] = "null"
    cache_ttl: float = Field(
        60.0, ge=0, description="Seconds a looked-up row (or a miss) is reused; 0: no cache."
    )
    cache_size: int = Field(
        10_000, ge=1, description="Keys kept in the cache at most (least recently used go)."
    )

    @field_validator("key")
    @classmethod
    def _jsonata(cls, value: str) -> str:
        return check_jsonata(value)

    @model_validator(mode="after")
    def _one_store(self) -> EnrichStepConfig:
        if (self.postgres is None) == (self.redis is None):
            msg = "enrich needs exactly one of 'postgres' or 'redis'"
            raise ValueError(msg)
        return self


class EnrichMissing(LookupError):
    """``on_missing: fail`` and no row for the key."""


class _Cache:
    def __init__(self, ttl: float, size: int) -> None:
        self.ttl = ttl
        self.size = size
        self._items: collections.OrderedDict[str, tuple[float, dict[str, Any] | None]] = (
            collections.OrderedDict()
        )

    def get(self, key: str) -> tuple[bool, dict[str, Any] | None]:
        item = self._items.get(key)
        if item is None or item[0] < time.monotonic():
            self._items.pop(key, None)
            return False, None
        self._items.move_to_end(key)
        return True, item[1]

    def put(self, key: str, value: dict[str, Any] | None) -> None:
        if self.ttl <= 0:
            return
        self._items[key] = (time.monotonic() + self.ttl, value)
        self._items.move_to_end(key)
        while len(self._items) > self.size:
            self._items.popitem(last=False)


class EnrichStep:
    def __init__(self, config: EnrichStepConfig, services: FlowServices | None = None) -> None:
        import jsonata  # type: ignore[import-untyped]  # noqa: PLC0415 — loaded by the flows that use it

        part = services.part.removeprefix("step:") if services is not None else ""
        self.name = part or config.name or "enrich"
        self.config = config
        self._expression = jsonata.Jsonata(config.key)
        self._cache = _Cache(config.cache_ttl, config.cache_size)
        self._pg: Any = None
        self._redis: Any = None
        self._own_redis = False
        if config.redis is not None and config.redis.url is None:
            if services is None:
                raise ConfigError("enrich: redis.url is not set and there is no top-level redis: to use")
            self._redis = services.need(services.redis, "Redis", "set the top-level redis: or redis.url")
        self._connect_lock = asyncio.Lock()
        pg = config.postgres
        if pg is not None:
            select = "*" if pg.columns is None else ", ".join(quote_ident(c) for c in pg.columns)
            self._query = (
                f"SELECT {select} FROM {qualified(pg.table)} WHERE {quote_ident(pg.key_column)} = %s LIMIT 1"  # noqa: S608 — identifiers validated and quoted
            )

    async def process(self, message: Message) -> Sequence[Message]:
        value = self._expression.evaluate(message.payload)
        row = None if value is None else await self._lookup(value)
        if row is None:
            if self.config.on_missing == "fail":
                raise EnrichMissing(f"enrich {self.name!r}: no row for key {value!r}")
            if self.config.on_missing == "skip":
                return [message]
        payload = dict(message.payload) if isinstance(message.payload, dict) else {"value": message.payload}
        payload[self.config.into] = row
        return [message.derive(payload)]

    async def _lookup(self, value: Any) -> dict[str, Any] | None:
        key = _key_text(value)
        hit, row = self._cache.get(key)
        if hit:
            return row
        row = await (
            self._from_postgres(value) if self.config.postgres is not None else self._from_redis(key)
        )
        self._cache.put(key, row)
        return row

    async def _from_postgres(self, value: Any) -> dict[str, Any] | None:
        import psycopg  # noqa: PLC0415
        from psycopg.rows import dict_row  # noqa: PLC0415

        pg = self.config.postgres
        assert pg is not None
        async with self._connect_lock:
            if self._pg is None or self._pg.closed:
                self._pg = await psycopg.AsyncConnection.connect(
                    pg.dsn, autocommit=True, row_factory=dict_row
                )
        # sent as text of unknown type, so Postgres reads it as the key column's type (int, text, uuid …)
        cursor = await self._pg.execute(self._query, (_key_text(value),))
        row = await cursor.fetchone()
        return None if row is None else {k: _json_value(v) for k, v in row.items()}

    async def _from_redis(self, key: str) -> dict[str, Any] | None:
        import redis.asyncio as aioredis  # noqa: PLC0415

        store = self.config.redis
        assert store is not None
        async with self._connect_lock:
            if self._redis is None:
                self._redis = aioredis.Redis.from_url(store.url or "", decode_responses=True)
                self._own_redis = True
        found: dict[Any, Any] = await self._redis.hgetall(store.prefix + key)
        return {_text(k): _text(v) for k, v in found.items()} or None

    async def aclose(self) -> None:
        if self._pg is not None:
            await self._pg.close()
        if self._redis is not None and self._own_redis:
            await self._redis.aclose()
        self._pg = self._redis = None


def _text(value: Any) -> Any:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def _key_text(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return value if isinstance(value, str) else str(value)


def _json_value(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, bytes | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    return value
