"""Fixtures of the resilience tests: a fake wall clock, the Redis at 127.0.0.1:6379, breaker stores.

Redis tests skip when Redis is unreachable, unless ``CI=true``: then they fail.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import AsyncIterator, Callable, Iterator

import pytest
from redis.asyncio import Redis

from interlace.resilience.breaker import Breakers
from interlace.resilience.breaker_store import BreakerStore, MemoryBreakerStore, RedisBreakerStore

REDIS_ADDRESS = ("127.0.0.1", 6379)


class FakeClock:
    """Wall-clock seconds that move only when told to, in whole milliseconds (no float drift)."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self._ms = round(start * 1000)

    def __call__(self) -> float:
        return self._ms / 1000

    def advance(self, seconds: float) -> None:
        self._ms += round(seconds * 1000)


def _reachable(address: tuple[str, int]) -> bool:
    try:
        with socket.create_connection(address, timeout=0.5):
            return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def redis_address() -> tuple[str, int]:
    """The test Redis's (host, port): skips the test when it is unreachable, fails it on CI."""
    if not _reachable(REDIS_ADDRESS):
        reason = "Redis is not reachable at {}:{}".format(*REDIS_ADDRESS)
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason}, and CI=true requires it")
        pytest.skip(reason)
    return REDIS_ADDRESS


async def delete_keys(client: Redis, prefix: str) -> None:
    keys = [key async for key in client.scan_iter(match=f"{prefix}:*")]
    if keys:
        await client.delete(*keys)


@pytest.fixture
async def redis_client(redis_address: tuple[str, int]) -> AsyncIterator[Redis]:
    host, port = redis_address
    client = Redis(host=host, port=port)
    yield client
    await client.aclose()


@pytest.fixture
async def redis_prefix(redis_client: Redis) -> AsyncIterator[str]:
    """A key prefix of this test alone; its keys are deleted afterwards."""
    prefix = f"test-{uuid.uuid4().hex[:12]}"
    yield prefix
    await delete_keys(redis_client, prefix)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def clock_factory() -> Callable[[], FakeClock]:
    return FakeClock


@pytest.fixture(params=["memory", "redis"])
def store(request: pytest.FixtureRequest) -> Iterator[BreakerStore]:
    """Each contract test runs against both stores (Redis never silently replaced by its fallback)."""
    if request.param == "memory":
        yield MemoryBreakerStore()
        return
    client: Redis = request.getfixturevalue("redis_client")
    prefix: str = request.getfixturevalue("redis_prefix")
    redis_store = RedisBreakerStore(client, prefix=prefix, timeout=10)
    yield redis_store
    assert not redis_store.degraded, "the Redis store fell back to process state during the test"


@pytest.fixture
def breakers(store: BreakerStore, clock: FakeClock) -> Breakers:
    return Breakers(store, clock=clock)
