"""Redis unreachable: the quotas fail open or closed as configured, logged once, counted per request."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from redis.asyncio import BlockingConnectionPool, Redis
from tests.support.observe import Records
from tests.support.ports import refusing_port
from tests.support.quotas import client, delete_prefix, new_prefix, require_redis, running

from interlace.core.principal import Limits, Principal
from interlace.security.quotas import Bucket, Demand, Granted, QuotaStoreError, RedisQuotaStore


def _yaml(policy: str, redis_port: int) -> str:
    return f"""
redis: {{url: 'redis://127.0.0.1:{redis_port}/0', prefix: down}}
quotas: {{on_store_error: {policy}, recheck: 30}}
models:
  limited:
    limits: {{rpm: 1}}
    deployments: [{{provider: fake, model: echo}}]
  free:
    deployments: [{{provider: fake, model: echo}}]
"""


def _body(model: str) -> dict[str, object]:
    return {"model": model, "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture
def redis_down() -> Iterator[int]:
    """The port of a Redis that is down: connections to it are refused."""
    with refusing_port() as port:
        yield port


async def test_fail_open_lets_requests_through_and_says_so_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, redis_down: int
) -> None:
    caplog.set_level(logging.INFO, logger="interlace.security.quotas")
    records = Records()
    budgeted = Principal(kind="key", id="ik_a", tenant="t", limits=Limits(budget_usd=0.000001))
    async with running(_yaml("open", redis_down), tmp_path) as runtime, client(runtime, budgeted) as http:
        runtime.observers.add(records)
        statuses = [
            (await http.post("/v1/chat/completions", json=_body("limited"))).status_code for _ in range(4)
        ]
        metrics = (await http.get("/metrics")).text
    assert statuses == [200, 200, 200, 200]  # neither the rpm of 1 nor the spent budget could be checked
    warnings = [r for r in caplog.records if "Quota state in Redis is unavailable" in r.getMessage()]
    assert len(warnings) == 1
    assert "requests are let through unchecked" in warnings[0].getMessage()
    assert 'interlace_quota_store_errors_total{policy="open"} 8.0' in metrics  # 4 x (rate limit, budget)
    decisions = records.wait(4)[0].decisions
    assert decisions == ["rate_limits:store_unavailable:open", "budgets:store_unavailable:open"]


async def test_fail_closed_refuses_limited_requests_with_503(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, redis_down: int
) -> None:
    caplog.set_level(logging.WARNING, logger="interlace.security.quotas")
    async with running(_yaml("closed", redis_down), tmp_path) as runtime, client(runtime) as http:
        refused = [await http.post("/v1/chat/completions", json=_body("limited")) for _ in range(3)]
        unlimited = await http.post("/v1/chat/completions", json=_body("free"))
        metrics = (await http.get("/metrics")).text
    assert [r.status_code for r in refused] == [503, 503, 503]
    error = refused[0].json()["error"]
    assert error["code"] == "quota_store_unavailable"
    assert "store is unavailable" in error["message"]
    assert refused[0].headers["retry-after"] == "1"
    assert unlimited.status_code == 200  # no limit applies: the store is not asked
    warnings = [r for r in caplog.records if "Quota state in Redis is unavailable" in r.getMessage()]
    assert len(warnings) == 1
    assert "refused (503)" in warnings[0].getMessage()
    assert 'interlace_quota_store_errors_total{policy="closed"} 3.0' in metrics


class _Proxy:
    """A TCP proxy to the test Redis that can be taken down and brought back on the same port."""

    def __init__(self) -> None:
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in self._writers:
            writer.close()
        await self._server.wait_closed()
        self._writers.clear()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", 6379)
        self._writers |= {writer, up_writer}

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError):
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            sink.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))


async def test_an_outage_is_logged_when_it_starts_and_when_it_ends(caplog: pytest.LogCaptureFixture) -> None:
    require_redis()
    caplog.set_level(logging.INFO, logger="interlace.security.quotas")
    proxy = _Proxy()
    await proxy.start()
    prefix = new_prefix()
    client = Redis.from_pool(
        BlockingConnectionPool.from_url(f"redis://127.0.0.1:{proxy.port}/0", timeout=None)
    )
    store = RedisQuotaStore(client, prefix=prefix, recheck=0.001)
    rpm = Bucket("outage", 10, 60_000)
    now = int(time.time() * 1000)
    try:
        assert isinstance(await store.reserve("a", [Demand(rpm, 1)], now), Granted)
        await proxy.stop()
        for attempt in ("b", "c", "d"):
            with pytest.raises(QuotaStoreError):
                await store.reserve(attempt, [Demand(rpm, 1)], now)
            await asyncio.sleep(0.002)  # past the recheck pause: Redis is asked again
        degraded = [store.degraded]
        await proxy.start()
        granted = await store.reserve("e", [Demand(rpm, 1)], now)
        assert isinstance(granted, Granted)
        assert granted.levels[0].used == 2  # the state in Redis outlived the outage
        degraded.append(store.degraded)
        assert degraded == [True, False]
    finally:
        await client.aclose()
        await proxy.stop()
        delete_prefix(prefix)
    messages = [r.getMessage() for r in caplog.records]
    assert sum("Quota state in Redis is unavailable" in m for m in messages) == 1
    assert sum("Quota state in Redis is reachable again" in m for m in messages) == 1
