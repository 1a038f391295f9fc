"""Virtual API keys: the format, the hash, validation, and the store on SQLite and on Postgres."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError
from sqlalchemy import select
from tests.support.databases import state_database
from tests.support.events import FlakyDatabase

from interlace.config import parse_config
from interlace.core.errors import ConfigError, NotFound, RequestError, ServiceUnavailable
from interlace.security.keys import KeySpec, KeyStore, RotateSpec, parse_duration, parse_key
from interlace.security.keys.model import hash_secret
from interlace.store.keys_tables import api_keys


@pytest.fixture(params=["sqlite", "postgres"])
async def database(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[FlakyDatabase]:
    async for database in state_database(request.param, tmp_path):
        yield database


def spec(**fields: object) -> KeySpec:
    return KeySpec.model_validate({"name": "ci", "tenant": "acme", **fields})


def test_a_key_parses_into_its_public_id_and_its_secret() -> None:
    assert parse_key("ik_0123456789abcdef_" + "s" * 43) == ("ik_0123456789abcdef", "s" * 43)
    for malformed in (
        "ik_0123456789abcdef",
        "ik_0123_" + "s" * 43,
        "sk-" + "s" * 43,
        "ik_0123456789abcdeF_" + "s" * 43,
    ):
        assert parse_key(malformed) is None


def test_durations() -> None:
    assert parse_duration("1h") == timedelta(hours=1)
    assert parse_duration("30d") == timedelta(days=30)
    assert parse_duration(90) == timedelta(seconds=90)
    assert parse_duration("15m") == timedelta(minutes=15)
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration("soon")


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"tenant": None}, "tenant"),
        ({"tenant": "a b"}, "tenant"),
        ({"endpoints": ["chat", "nope"]}, "endpoints"),
        ({"limits": {"rpm": 0}}, "rpm"),
        ({"limits": {"budget_period": "week"}}, "budget_period"),
        ({"expires_in": "soon"}, "expires_in"),
        ({"expires_at": "2001-01-01T00:00:00Z"}, "expires_at"),
        ({"secret": "x"}, "secret"),
    ],
)
def test_a_bad_request_names_its_field(fields: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        spec(**fields)
    assert field in str(caught.value)


def test_the_tenant_is_required() -> None:
    with pytest.raises(ValidationError, match="tenant"):
        KeySpec.model_validate({"name": "ci"})


async def test_create_stores_only_the_hash_and_returns_the_secret_once(database: FlakyDatabase) -> None:
    store = KeyStore(database)
    issued = await store.create(
        spec(
            team="search",
            models=["gpt", "echo"],
            endpoints=["chat"],
            expires_in="1d",
            limits={"rpm": 60, "tpm": 1000, "budget_usd": 5, "soft_budget_usd": 4, "budget_period": "day"},
            metadata={"owner": "ana"},
        )
    )
    key_id, secret = parse_key(issued.token) or ("", "")
    assert key_id == issued.key.id
    async with database.engine.connect() as connection:
        row = (await connection.execute(select(api_keys))).mappings().one()
    assert secret not in str(dict(row))
    assert row["secret_hash"] == hash_secret(secret)

    stored = await store.require(key_id)
    now = datetime.now(UTC)
    assert stored.matches(secret, now)
    assert not stored.matches(secret[:-1] + ("A" if secret[-1] != "A" else "B"), now)
    assert stored.models == frozenset({"gpt", "echo"})
    assert stored.endpoints == frozenset({"chat"})
    assert stored.limits.rpm == 60
    assert stored.limits.budget_period == "day"
    assert stored.metadata == {"owner": "ana"}
    assert stored.expires_at is not None
    assert timedelta(hours=23) < stored.expires_at - now <= timedelta(days=1)
    principal = stored.principal()
    assert (principal.kind, principal.id, principal.tenant, principal.team) == (
        "key",
        key_id,
        "acme",
        "search",
    )
    public = stored.public()
    assert "secret_hash" not in public
    assert "key" not in public
    assert public["status"] == "active"


async def test_list_filters_by_tenant_and_team_and_hides_revoked(database: FlakyDatabase) -> None:
    store = KeyStore(database)
    a1 = (await store.create(spec(tenant="a", team="x"))).key
    a2 = (await store.create(spec(tenant="a", team="y"))).key
    b1 = (await store.create(spec(tenant="b"))).key
    await store.revoke(a2.id)
    assert {k.id for k in await store.list_keys()} == {a1.id, b1.id}
    assert {k.id for k in await store.list_keys(tenant="a", include_revoked=True)} == {a1.id, a2.id}
    assert {k.id for k in await store.list_keys(tenant="a", team="x")} == {a1.id}
    assert await store.list_keys(tenant="c") == []


async def test_rotation_with_grace_keeps_the_old_secret_for_a_while(database: FlakyDatabase) -> None:
    store = KeyStore(database)
    first = await store.create(spec())
    old = parse_key(first.token)
    assert old is not None
    second = await store.rotate(first.key.id, grace=RotateSpec(grace="1h").grace_period())
    new = parse_key(second.token)
    assert new is not None
    assert new[0] == old[0]
    assert new[1] != old[1]
    now = datetime.now(UTC)
    key = await store.require(old[0])
    assert key.matches(new[1], now)
    assert key.matches(old[1], now)
    assert not key.matches(old[1], now + timedelta(hours=1, seconds=1))

    third = await store.rotate(first.key.id)  # no grace: only the newest secret works
    newest = parse_key(third.token)
    assert newest is not None
    key = await store.require(old[0])
    assert key.matches(newest[1], now)
    assert not key.matches(new[1], now)
    assert not key.matches(old[1], now)


async def test_revoke_is_final_and_unknown_ids_are_404(database: FlakyDatabase) -> None:
    store = KeyStore(database)
    key = (await store.create(spec())).key
    revoked = await store.revoke(key.id)
    assert revoked.status(datetime.now(UTC)) == "revoked"
    again = await store.revoke(key.id)
    assert again.revoked_at == revoked.revoked_at
    with pytest.raises(RequestError, match="revoked"):
        await store.rotate(key.id)
    with pytest.raises(NotFound):
        await store.require("ik_0000000000000000")
    assert await store.get("not-a-key-id") is None


async def test_changed_since_returns_recent_writes(database: FlakyDatabase) -> None:
    store = KeyStore(database)
    before = datetime.now(UTC) - timedelta(seconds=1)
    key = (await store.create(spec())).key
    assert [k.id for k in await store.changed_since(before)] == [key.id]
    assert await store.changed_since(datetime.now(UTC) + timedelta(minutes=1)) == []


async def test_a_database_failure_is_a_503_not_a_stack_trace(database: FlakyDatabase) -> None:
    store = KeyStore(database)
    database.down = True
    with pytest.raises(ServiceUnavailable) as caught:
        await store.create(spec())
    assert caught.value.code == "database_unavailable"
    assert caught.value.status == 503


@pytest.mark.parametrize(
    ("auth", "enabled"),
    [
        ("", False),
        ("auth:\n  master_key: ${K}\n", True),
        ("auth:\n  admin_key: ${K}\n", True),
        ("auth:\n  virtual_keys: true\n", True),
        ("auth:\n  key_cache: {refresh_interval: 1}\n", False),
    ],
)
def test_what_enables_authentication(auth: str, enabled: bool) -> None:
    assert parse_config(auth, environ={"K": "v"}).auth.enabled is enabled


def test_the_admin_key_must_come_from_the_environment() -> None:
    with pytest.raises(ConfigError, match=r"admin_key: \$\{INTERLACE_ADMIN_KEY\}"):
        parse_config("auth:\n  admin_key: plain-text\n")
