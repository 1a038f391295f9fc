"""What the Postgres flow tests share: the test server (with ``wal_level=logical``) and a schema per test.

The server is ``INTERLACE_TEST_POSTGRES_DSN`` (default ``postgresql://postgres@127.0.0.1:5432/test``).
Tests skip when it is unreachable, unless ``CI=true``: then they fail.
"""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from collections.abc import AsyncIterator
from typing import Any

import psycopg
import pytest

DSN = os.environ.get("INTERLACE_TEST_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/test")


def _unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason}, and CI=true requires it")
    pytest.skip(reason)


def require_postgres() -> None:
    """Skip (outside CI) or fail (CI=true) when the test Postgres is unreachable."""
    info = psycopg.conninfo.conninfo_to_dict(DSN)
    host, port = str(info.get("host", "127.0.0.1")), int(str(info.get("port", 5432)))
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return
    except OSError:
        _unavailable(f"Postgres is not reachable at {host}:{port}")


async def require_logical(conn: psycopg.AsyncConnection[Any]) -> None:
    row = await (await conn.execute("SHOW wal_level")).fetchone()
    if row is None or row[0] != "logical":
        _unavailable(f"Postgres has wal_level={row and row[0]}; CDC tests need logical (.ci/run sets it)")


def unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


async def connect() -> psycopg.AsyncConnection[Any]:
    return await psycopg.AsyncConnection.connect(DSN, autocommit=True)


async def drop_slot(slot: str) -> None:
    """Drop a test's replication slot (ending a reader still on it) and its publication: a slot left
    behind keeps WAL forever."""
    async with await connect() as conn:
        await conn.execute(
            "SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots "
            "WHERE slot_name = %s AND active",
            (slot,),
        )
        for _ in range(50):
            row = await (
                await conn.execute("SELECT active FROM pg_replication_slots WHERE slot_name = %s", (slot,))
            ).fetchone()
            if row is None or not row[0]:
                break
            await asyncio.sleep(0.1)
        await conn.execute(
            "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = %s",
            (slot,),
        )
        await conn.execute(f'DROP PUBLICATION IF EXISTS "{slot}"')


async def schema_fixture() -> AsyncIterator[str]:
    """A fresh schema, dropped (with everything in it) afterwards."""
    require_postgres()
    name = unique("flows_pg")
    async with await connect() as conn:
        await conn.execute(f'CREATE SCHEMA "{name}"')
    try:
        yield name
    finally:
        async with await connect() as conn:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
