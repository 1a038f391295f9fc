"""The authenticator: every credential source, and a clear reason for every rejection."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from starlette.responses import Response
from starlette.types import Receive, Scope, Send
from tests.support.databases import state_database
from tests.support.observe import Records

from interlace.core.errors import AuthenticationError, ServiceUnavailable
from interlace.core.principal import Principal
from interlace.gateway.identity import principal_of
from interlace.gateway.middleware.auth import Authenticate
from interlace.gateway.recording import Recorder
from interlace.security.authn import ADMIN, MASTER, Authenticator
from interlace.security.keys import ApiKey, KeyCache, KeySpec, KeyStore, parse_key


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[KeyStore]:
    async for database in state_database("sqlite", tmp_path):
        yield KeyStore(database)


@pytest.fixture
async def cache(store: KeyStore) -> AsyncIterator[KeyCache]:
    cache = KeyCache(store, refresh_interval=3600)
    await cache.start()
    yield cache
    await cache.aclose()


class Tokens:
    """A token verifier accepting one token (what the OIDC verifier does for a valid JWT)."""

    async def verify(self, token: str) -> Principal:
        if token != "aaa.bbb.ccc":
            raise AuthenticationError("bad token", code="invalid_token")
        return Principal(kind="token", id="jwt:issuer#ana", tenant="acme", subject="ana")


async def new_key(store: KeyStore, cache: KeyCache, **fields: object) -> str:
    issued = await store.create(KeySpec.model_validate({"name": "k", "tenant": "acme", **fields}))
    cache.put(issued.key)
    return issued.token


async def rejected(authenticator: Authenticator, credential: str | None, *, admin: bool = False) -> str:
    with pytest.raises(AuthenticationError) as caught:
        await authenticator.authenticate(credential, admin=admin)
    if credential:
        assert credential not in caught.value.message  # the secret is never echoed
        parsed = parse_key(credential)
        if parsed is not None:  # the secret part alone is never echoed either
            assert parsed[1] not in caught.value.message
    return caught.value.code


async def test_master_admin_and_virtual_keys(store: KeyStore, cache: KeyCache) -> None:
    authn = Authenticator(master_key="m-secret", admin_key="a-secret", keys=cache)
    assert await authn.authenticate("m-secret") is MASTER
    assert await authn.authenticate("a-secret", admin=True) is ADMIN
    assert await rejected(authn, "a-secret") == "invalid_api_key"  # the admin key opens /admin/ only
    token = await new_key(store, cache, team="search", models=["echo"], endpoints=["chat"], limits={"rpm": 5})
    principal = await authn.authenticate(token)
    assert principal.kind == "key"
    assert principal.id == token[:19]
    assert (principal.tenant, principal.team) == ("acme", "search")
    assert principal.models == frozenset({"echo"})
    assert principal.endpoints == frozenset({"chat"})
    assert principal.limits.rpm == 5
    assert not principal.is_operator


async def test_every_rejection_says_why(store: KeyStore, cache: KeyCache) -> None:
    authn = Authenticator(master_key="m-secret", keys=cache)
    assert await rejected(authn, None) == "missing_api_key"
    assert await rejected(authn, "") == "missing_api_key"
    assert await rejected(authn, "ik_short") == "malformed_api_key"
    assert await rejected(authn, "ik_0123456789abcdef_" + "x" * 43) == "unknown_api_key"
    assert await rejected(authn, "sk-something-else") == "invalid_api_key"

    token = await new_key(store, cache)
    assert await rejected(authn, token[:-1] + ("A" if token[-1] != "A" else "B")) == "invalid_api_key"

    expiring = await new_key(store, cache, expires_in="1h")
    later = Authenticator(keys=cache, now=lambda: datetime.now(UTC) + timedelta(hours=2))
    assert await rejected(later, expiring) == "expired_api_key"
    assert (await later.authenticate(token)).tenant == "acme"

    key_id = token[:19]
    cache.put(await store.revoke(key_id))
    assert await rejected(authn, token) == "revoked_api_key"


async def test_jwts_go_to_the_token_verifier(store: KeyStore, cache: KeyCache) -> None:
    authn = Authenticator(keys=cache, tokens=Tokens())
    assert (await authn.authenticate("aaa.bbb.ccc")).id == "jwt:issuer#ana"
    assert await rejected(authn, "aaa.bbb.ddd") == "invalid_token"
    without = Authenticator(master_key="m")
    assert await rejected(without, "aaa.bbb.ccc") == "invalid_api_key"


async def test_nothing_configured_is_disabled(cache: KeyCache) -> None:
    assert not Authenticator().enabled
    assert Authenticator(keys=cache).enabled
    assert Authenticator(master_key="m").enabled


async def test_a_key_made_elsewhere_is_found_on_demand(store: KeyStore, tmp_path: Path) -> None:
    """Another instance (the CLI) created it after this cache loaded: one lookup finds it."""
    cache = KeyCache(store, refresh_interval=3600, lookups_per_second=1)
    await cache.start()
    try:
        authn = Authenticator(keys=cache)
        issued = await store.create(KeySpec(name="late", tenant="acme"))
        assert (await authn.authenticate(issued.token)).id == issued.key.id
    finally:
        await cache.aclose()


class CountingStore(KeyStore):
    """The real store, counting its single-key lookups."""

    lookups = 0

    async def get(self, key_id: str) -> ApiKey | None:
        self.lookups += 1
        return await super().get(key_id)


async def test_unknown_ids_cannot_flood_the_database(store: KeyStore) -> None:
    """Lookups of unknown ids are rate limited; a rejected id is not looked up again for a while."""
    counting = CountingStore(store.database)
    now = [0.0]
    cache = KeyCache(counting, refresh_interval=60, lookups_per_second=1, clock=lambda: now[0])
    await cache.start()
    try:
        results = await asyncio.gather(*(cache.find("ik_00000000000000aa") for _ in range(20)))
        assert results == [None] * 20
        assert counting.lookups == 1  # concurrent finds of one id share one lookup
        assert await cache.find("ik_00000000000000bb") is None
        assert counting.lookups == 1  # no token left this second: no lookup
        now[0] = 5.0
        assert await cache.find("ik_00000000000000aa") is None
        assert counting.lookups == 1  # remembered as missing for refresh_interval
        issued = await store.create(KeySpec(name="k", tenant="acme"))
        found = await cache.find(issued.key.id)
        assert found is not None
        assert found.key.id == issued.key.id
        assert counting.lookups == 2
        assert await cache.find(issued.key.id) is found  # now in the snapshot
        assert counting.lookups == 2
    finally:
        await cache.aclose()


class IssuerDown:
    """A token verifier whose issuer's keys were never fetched."""

    async def verify(self, token: str) -> Principal:
        raise ServiceUnavailable("the issuer's signing keys are unavailable", code="jwks_unavailable")


async def test_the_middleware_answers_and_records_every_refusal(cache: KeyCache) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        principal = principal_of(scope)
        await Response(principal.id, media_type="text/plain")(scope, receive, send)

    records = Records()
    authn = Authenticator(master_key="m-secret", keys=cache, tokens=IssuerDown())
    guarded = Authenticate(app, authenticator=authn, recorder=Recorder(records, {}))
    transport = httpx.ASGITransport(app=guarded)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
        assert (await client.get("/v1/models", headers={"authorization": "Bearer m-secret"})).text == "master"
        assert (await client.get("/healthz")).text == "anonymous"  # probes stay open
        missing = await client.post("/v1/messages")
        assert missing.status_code == 401
        assert missing.headers["www-authenticate"] == "Bearer"
        assert missing.json()["type"] == "error"  # Anthropic-shaped on /v1/messages
        down = await client.get("/v1/models", headers={"authorization": "Bearer aaa.bbb.ccc"})
        assert down.status_code == 503
        assert down.json()["error"]["code"] == "jwks_unavailable"
        assert "www-authenticate" not in down.headers
    assert [(r.status, r.error_code, r.operation) for r in records.records] == [
        (401, "missing_api_key", "chat"),
        (503, "jwks_unavailable", "other"),
    ]
