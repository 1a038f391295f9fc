"""The key cache: loads everything, refreshes what changed, and keeps serving when the database is down."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from tests.support.databases import state_database
from tests.support.events import FlakyDatabase

from interlace.core.errors import AuthenticationError
from interlace.security.authn import Authenticator
from interlace.security.keys import KeyCache, KeySpec, KeyStore


@pytest.fixture(params=["sqlite", "postgres"])
async def database(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[FlakyDatabase]:
    async for database in state_database(request.param, tmp_path):
        yield database


async def started(store: KeyStore) -> KeyCache:
    cache = KeyCache(store, refresh_interval=3600, lookups_per_second=100)
    await cache.start()
    return cache


async def test_changes_made_elsewhere_arrive_with_the_next_refresh(database: FlakyDatabase) -> None:
    """Two gateways on one database: a revocation or rotation on one reaches the other's cache."""
    store = KeyStore(database)
    before = await store.create(KeySpec(name="old", tenant="a"))
    here, there = await started(store), await started(store)
    try:
        assert here.details()["keys"] == 1
        assert here.get(before.key.id) is not None
        created = await store.create(KeySpec(name="new", tenant="b"))  # as the other instance's admin API
        await store.revoke(before.key.id)
        there.put(await store.require(before.key.id))
        authn = Authenticator(keys=here)
        assert (await authn.authenticate(before.token)).id == before.key.id  # not refreshed yet
        assert await here.refresh()
        with pytest.raises(AuthenticationError) as caught:
            await authn.authenticate(before.token)
        assert caught.value.code == "revoked_api_key"
        assert (await authn.authenticate(created.token)).tenant == "b"
        assert here.details()["keys"] == 2

        rotated = await store.rotate(created.key.id)
        assert await here.refresh()
        with pytest.raises(AuthenticationError, match="Invalid secret"):
            await authn.authenticate(created.token)
        assert (await authn.authenticate(rotated.token)).id == created.key.id
    finally:
        await here.aclose()
        await there.aclose()


async def test_the_last_snapshot_serves_while_the_database_is_down(
    database: FlakyDatabase, caplog: pytest.LogCaptureFixture
) -> None:
    store = KeyStore(database)
    valid = await store.create(KeySpec(name="valid", tenant="a"))
    revoked = await store.create(KeySpec(name="revoked", tenant="a"))
    await store.revoke(revoked.key.id)
    cache = await started(store)
    try:
        authn = Authenticator(keys=cache)
        database.down = True
        with caplog.at_level(logging.ERROR, logger="interlace.security.keys"):
            assert not await cache.refresh()
            assert not await cache.refresh()
        assert len([r for r in caplog.records if "cannot refresh" in r.getMessage()]) == 1  # logged once
        assert cache.loaded
        assert "OperationalError" in (cache.details()["error"] or "")

        assert (await authn.authenticate(valid.token)).id == valid.key.id
        for token, code in (
            (revoked.token, "revoked_api_key"),
            ("ik_0123456789abcdef_" + "x" * 43, "unknown_api_key"),
        ):
            with pytest.raises(AuthenticationError) as caught:
                await authn.authenticate(token)
            assert caught.value.code == code

        database.down = False
        assert await cache.refresh()
        assert cache.details()["error"] is None
    finally:
        await cache.aclose()
