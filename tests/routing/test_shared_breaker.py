"""Two gateway instances sharing Redis see the same breaker state."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis
from tests.support.gateway import GatewayServer

from interlace.config import parse_config
from interlace.testing import Fault, UpstreamServer


def _redis_up() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=0.5):
            return True
    except OSError:
        return False


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    if not _redis_up():
        if os.environ.get("CI") == "true":
            pytest.fail("Redis is not answering on 127.0.0.1:6379 (CI must start it)")
        pytest.skip("Redis is not answering on 127.0.0.1:6379")
    prefix = f"interlace-test-{uuid.uuid4().hex[:8]}"
    yield prefix
    with redis.Redis(host="127.0.0.1", port=6379) as client:
        for key in client.scan_iter(f"{prefix}:*"):
            client.delete(key)


@pytest.fixture
def upstream() -> Iterator[UpstreamServer]:
    with UpstreamServer("openai") as server:
        yield server


def _gateway(upstream: UpstreamServer, prefix: str, state: Path) -> GatewayServer:
    yaml = (
        f"state: {{dir: {state}}}\n"
        f"redis: {{url: 'redis://127.0.0.1:6379/0', prefix: {prefix}}}\n"
        "models:\n  solo:\n"
        "    retry: {max_attempts: 1}\n"
        "    breaker: {min_requests: 2, failure_rate: 0.5, open_for: 30}\n"
        f"    deployments:\n      - {{provider: openai, model: echo, base_url: '{upstream.url}/v1'}}\n"
    )
    return GatewayServer(parse_config(yaml, environ={}))


def test_failures_seen_by_one_instance_open_the_breaker_for_the_other(
    upstream: UpstreamServer, redis_prefix: str, tmp_path: Path
) -> None:
    body = {"model": "solo", "messages": [{"role": "user", "content": "hi"}]}
    with (
        _gateway(upstream, redis_prefix, tmp_path / "a") as first,
        _gateway(upstream, redis_prefix, tmp_path / "b") as second,
    ):
        assert httpx.post(f"{second.url}/v1/chat/completions", json=body).status_code == 200
        upstream.script.push(Fault(kind="status", status=500), times=2)
        for _ in range(2):
            assert httpx.post(f"{first.url}/v1/chat/completions", json=body).status_code == 502
        seen = len(upstream.requests)
        reply = httpx.post(f"{second.url}/v1/chat/completions", json=body)
        assert reply.status_code == 502
        assert reply.json()["error"]["code"] == "deployments_unavailable"
        assert "open" in reply.json()["error"]["message"]
        assert len(upstream.requests) == seen  # the second instance did not try the open deployment
        ready = httpx.get(f"{second.url}/readyz").json()
        assert ready["checks"]["redis"] is True
