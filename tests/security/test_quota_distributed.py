"""Two ``interlace serve`` processes sharing the machine's Redis enforce one exact limit together."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from tests.support.quotas import REDIS_URL, delete_prefix, new_prefix, require_redis

pytestmark = pytest.mark.slow

HELLO = [{"role": "user", "content": "hello world"}]  # ~3 tokens estimated; the fake bills 2 + 3


def _config(prefix: str, state: Path) -> str:
    return f"""
state: {{dir: {state}}}
redis: {{url: '{REDIS_URL}', prefix: {prefix}}}
quotas: {{store_timeout: 10}}
observability: {{logs: {{request_log: false}}}}
models:
  echo:
    limits: {{rpm: 100}}
    deployments: [{{provider: fake, model: echo}}]
  metered:
    limits: {{tpm: 1000}}
    deployments: [{{provider: fake, model: echo}}]
"""


class _Gateway:
    """``interlace serve`` in a subprocess; its output goes to a file (a full pipe would block it)."""

    def __init__(self, config: Path, log: Path) -> None:
        self.log = log
        self._output = log.open("w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "interlace", "serve", "--config", str(config), "--port", "0"],
            stdout=self._output,
            stderr=subprocess.STDOUT,
            env={**os.environ, "COLUMNS": "200"},
        )
        self.url = ""

    def wait_ready(self) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and self.process.poll() is None:
            text = self.log.read_text()
            if "listening on " in text:
                self.url = text.split("listening on ")[1].split()[0]
                try:
                    if httpx.get(f"{self.url}/readyz").status_code == 200:
                        return
                except httpx.TransportError:
                    pass
            time.sleep(0.05)
        msg = f"interlace serve did not start:\n{self.log.read_text()}"
        raise AssertionError(msg)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._output.close()


@pytest.fixture(scope="module")
def gateways(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[str]]:
    """Two gateways sharing one Redis prefix, started once for this module (the tests use other models)."""
    require_redis()
    tmp_path = tmp_path_factory.mktemp("gateways")
    prefix = new_prefix()
    started: list[_Gateway] = []
    try:
        for name in ("a", "b"):
            config = tmp_path / f"{name}.yaml"
            config.write_text(_config(prefix, tmp_path / f"state-{name}"))
            started.append(_Gateway(config, tmp_path / f"{name}.log"))
        for gateway in started:
            gateway.wait_ready()
        yield [gateway.url for gateway in started]
    finally:
        for gateway in started:
            gateway.stop()
        delete_prefix(prefix)


async def _burst(urls: list[str], count: int, body: dict[str, object]) -> list[httpx.Response]:
    """``count`` requests at once, spread evenly over the gateways."""
    limits = httpx.Limits(max_connections=count, max_keepalive_connections=count)
    async with httpx.AsyncClient(limits=limits, timeout=120) as http:
        return await asyncio.gather(
            *(http.post(f"{urls[i % len(urls)]}/v1/chat/completions", json=body) for i in range(count))
        )


async def test_a_thousand_concurrent_requests_on_two_gateways_admit_exactly_the_limit(
    gateways: list[str],
) -> None:
    answers = await _burst(gateways, 1000, {"model": "echo", "messages": HELLO})
    statuses = [a.status_code for a in answers]
    assert statuses.count(200) == 100
    assert statuses.count(429) == 900
    for answer in answers:
        if answer.status_code == 429:
            assert 1 <= int(answer.headers["retry-after"]) <= 60
            assert answer.headers["x-ratelimit-limit-requests"] == "100"
            assert answer.headers["x-ratelimit-remaining-requests"] == "0"
            assert answer.json()["error"]["code"] == "rate_limit_exceeded"
            assert "model 'echo'" in answer.json()["error"]["message"]
    served = {a.headers["x-ratelimit-remaining-requests"] for a in answers if a.status_code == 200}
    assert served == {str(n) for n in range(100)}  # each remaining count was handed out once


async def test_tokens_used_under_concurrency_stay_within_the_token_limit(gateways: list[str]) -> None:
    # each request reserves 3 + 7 = 10 tokens and really uses 5: at most 100 fit at once
    answers = await _burst(gateways, 200, {"model": "metered", "messages": HELLO, "max_tokens": 7})
    used = sum(a.json()["usage"]["total_tokens"] for a in answers if a.status_code == 200)
    assert 100 * 5 <= used <= 1000
    assert {a.status_code for a in answers} <= {200, 429}
