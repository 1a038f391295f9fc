"""The enrich step against the real Postgres and Redis: lookup by a JSONata key, misses, the cache."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio as aioredis
from pydantic import ValidationError
from tests.support.flows_postgres import DSN, connect, schema_fixture
from tests.support.quotas import REDIS_URL, require_redis

from interlace.core.errors import ConfigError
from interlace.flows.message import Message
from interlace.flows.services import FlowServices
from interlace.flows.steps.enrich import EnrichMissing, EnrichStep, EnrichStepConfig


@pytest.fixture
async def schema() -> AsyncIterator[str]:
    async for name in schema_fixture():
        async with await connect() as conn:
            await conn.execute(
                f'CREATE TABLE "{name}".customers (id int PRIMARY KEY, tier text, credit numeric, since date)'
            )
            await conn.execute(f"""INSERT INTO "{name}".customers VALUES (42, 'gold', 12.50, '2020-01-02')""")
        yield name


@pytest.fixture
async def redis_prefix() -> AsyncIterator[str]:
    require_redis()
    prefix = f"interlace-test-{uuid.uuid4().hex[:10]}:"
    client = aioredis.Redis.from_url(REDIS_URL, decode_responses=True)
    try:
        yield prefix
    finally:
        keys = [key async for key in client.scan_iter(f"{prefix}*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()


def ticket(**payload: Any) -> Message:
    return Message(id="t1", payload=payload, source="test")


def pg_step(schema: str, **options: Any) -> EnrichStep:
    config = EnrichStepConfig.model_validate(
        {
            "type": "enrich",
            "key": "customer.id",
            "into": "customer_row",
            "postgres": {"dsn": DSN, "table": f"{schema}.customers", "key_column": "id"},
            **options,
        }
    )
    return EnrichStep(config)


async def test_postgres_row_merged_under_into(schema: str) -> None:
    step = pg_step(schema)
    try:
        [out] = await step.process(ticket(customer={"id": 42}, text="hi"))
    finally:
        await step.aclose()
    assert out.payload == {
        "customer": {"id": 42},
        "text": "hi",
        "customer_row": {"id": 42, "tier": "gold", "credit": "12.50", "since": "2020-01-02"},
    }
    assert out.id == "t1"


@pytest.mark.parametrize(
    ("on_missing", "expected"),
    [("null", [{"customer": {"id": 7}, "customer_row": None}]), ("skip", [{"customer": {"id": 7}}])],
)
async def test_missing_row(schema: str, on_missing: str, expected: list[Any]) -> None:
    step = pg_step(schema, on_missing=on_missing)
    try:
        assert [m.payload for m in await step.process(ticket(customer={"id": 7}))] == expected
    finally:
        await step.aclose()


async def test_missing_row_fails_when_asked(schema: str) -> None:
    step = pg_step(schema, on_missing="fail")
    try:
        with pytest.raises(EnrichMissing, match="7"):
            await step.process(ticket(customer={"id": 7}))
    finally:
        await step.aclose()


async def test_cache_reuses_a_row_until_its_ttl(schema: str) -> None:
    cached, uncached = pg_step(schema, cache_ttl=300), pg_step(schema, cache_ttl=0)
    try:
        for step in (cached, uncached):
            await step.process(ticket(customer={"id": 42}))
        async with await connect() as conn:
            await conn.execute(f"""UPDATE "{schema}".customers SET tier = 'platinum' WHERE id = 42""")
        [from_cache] = await cached.process(ticket(customer={"id": 42}))
        [fresh] = await uncached.process(ticket(customer={"id": 42}))
    finally:
        await cached.aclose()
        await uncached.aclose()
    assert from_cache.payload["customer_row"]["tier"] == "gold"
    assert fresh.payload["customer_row"]["tier"] == "platinum"


async def test_redis_hash_by_expression(redis_prefix: str) -> None:
    client = aioredis.Redis.from_url(REDIS_URL, decode_responses=True)
    await client.hset(f"{redis_prefix}sku:A-1", mapping={"stock": "3", "warehouse": "north"})
    await client.aclose()
    config = EnrichStepConfig.model_validate(
        {
            "type": "enrich",
            "key": "'sku:' & sku",
            "into": "stock",
            "redis": {"url": REDIS_URL, "prefix": redis_prefix},
        }
    )
    step = EnrichStep(config)
    try:
        [out] = await step.process(ticket(sku="A-1"))
        [missing] = await step.process(ticket(sku="B-2"))
    finally:
        await step.aclose()
    assert out.payload == {"sku": "A-1", "stock": {"stock": "3", "warehouse": "north"}}
    assert missing.payload == {"sku": "B-2", "stock": None}


async def test_redis_defaults_to_the_processes_shared_client(redis_prefix: str) -> None:
    shared = aioredis.Redis.from_url(REDIS_URL)  # bytes, as the runtime's client
    await shared.hset(f"{redis_prefix}c:7", mapping={"tier": "gold"})
    config = EnrichStepConfig.model_validate(
        {"type": "enrich", "key": "id", "into": "customer", "redis": {"prefix": f"{redis_prefix}c:"}}
    )
    step = EnrichStep(config, FlowServices(flow="f", part="step:lookup", redis=shared))
    try:
        [out] = await step.process(ticket(id=7))
        assert step.name == "lookup"
    finally:
        await step.aclose()
        await shared.aclose()
    assert out.payload == {"id": 7, "customer": {"tier": "gold"}}
    with pytest.raises(ConfigError, match="redis"):
        EnrichStep(config, FlowServices(flow="f"))


def test_config_needs_exactly_one_store_and_a_valid_key() -> None:
    with pytest.raises(ValidationError, match="exactly one"):
        EnrichStepConfig.model_validate({"type": "enrich", "key": "a", "into": "b"})
    with pytest.raises(ValidationError, match="JSONata"):
        EnrichStepConfig.model_validate({"type": "enrich", "key": "a..(", "into": "b", "redis": {}})
