"""What the quota and budget tests share: the test Redis, a gateway app whose caller is a given principal."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
import redis
from starlette.types import ASGIApp, Receive, Scope, Send

from interlace.config import parse_config
from interlace.core.principal import Principal
from interlace.gateway.app import build_app
from interlace.gateway.identity import PRINCIPAL_SCOPE_KEY
from interlace.runtime import Runtime

REDIS_URL = "redis://127.0.0.1:6379/0"


def require_redis() -> None:
    """Skip (outside CI) or fail (CI=true) when the test Redis at 127.0.0.1:6379 is unreachable."""
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=0.5):
            return
    except OSError:
        reason = "Redis is not reachable at 127.0.0.1:6379"
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason}, and CI=true requires it")
    pytest.skip(reason)


def new_prefix() -> str:
    return f"interlace-test-{uuid.uuid4().hex[:10]}"


def delete_prefix(prefix: str) -> None:
    with redis.Redis.from_url(REDIS_URL) as client:
        keys = list(client.scan_iter(f"{prefix}:*"))
        if keys:
            client.delete(*keys)


def as_principal(app: ASGIApp, principal: Principal | None) -> ASGIApp:
    """What the auth middleware does for a credential: put its principal in the scope."""

    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        if principal is not None:
            scope = {**scope, PRINCIPAL_SCOPE_KEY: principal}
        await app(scope, receive, send)

    return wrapped


@asynccontextmanager
async def running(yaml_text: str, state: Path) -> AsyncIterator[Runtime]:
    """A started runtime from ``yaml_text`` keeping its state under ``state``; stopped afterwards."""
    config = parse_config(yaml_text, filename="test.yaml", environ={})
    config = config.model_copy(update={"state": config.state.model_copy(update={"dir": str(state)})})
    runtime = Runtime(config, config_source="test")
    await runtime.start()
    try:
        yield runtime
    finally:
        await runtime.stop()


def client(runtime: Runtime, principal: Principal | None = None) -> httpx.AsyncClient:
    """An in-process client of the runtime's app, calling as ``principal``."""
    transport = httpx.ASGITransport(app=as_principal(build_app(runtime), principal))
    return httpx.AsyncClient(transport=transport, base_url="http://gateway")
