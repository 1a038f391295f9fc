"""Signing keys over real HTTP: discovery, the cache, rotation, the refetch rate limit, JWKS outages.

Time in the key cache is a manual clock, so TTLs and rate limits are stepped, never slept through.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm
from tests.support.oidc import ManualClock, issuer_entry, oidc_config, verifier_for

from interlace.core.errors import AuthenticationError, ServiceUnavailable
from interlace.security.oidc import KeySet, OidcVerifier
from interlace.testing.oidc_issuer import OidcIssuer


@pytest.fixture
def idp() -> Iterator[OidcIssuer]:
    with OidcIssuer() as issuer:
        yield issuer


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def verifier(idp: OidcIssuer, clock: ManualClock) -> AsyncIterator[OidcVerifier]:
    made = verifier_for(idp, clock)  # jwks_ttl 600 s, refetch_interval 30 s
    yield made
    await made.aclose()


async def test_a_rotated_key_is_accepted_after_one_refetch(
    idp: OidcIssuer, clock: ManualClock, verifier: OidcVerifier
) -> None:
    old = idp.current_kid
    await verifier.verify(idp.token())
    assert idp.jwks_requests == 1
    clock.advance(31)
    new = idp.add_key("ec-p256")  # the issuer rotates: a new key is published and signs from now on
    idp.retire_key(old or "")
    principal = await verifier.verify(idp.token(sub="after-rotation"))
    assert principal.subject == "after-rotation"
    assert idp.jwks_requests == 2
    assert verifier.keys(idp.issuer).keys is not None
    assert new in verifier.keys(idp.issuer).keys.kids  # type: ignore[union-attr]
    assert idp.discovery_requests == 1  # the jwks_uri is remembered
    # a token of the retired key no longer verifies (its kid left the fetched set)
    with pytest.raises(AuthenticationError) as caught:
        await verifier.verify(idp.token(kid=old))
    assert caught.value.code == "unknown_signing_key"


async def test_unknown_kids_refetch_at_most_once_per_interval(
    idp: OidcIssuer, clock: ManualClock, verifier: OidcVerifier
) -> None:
    await verifier.verify(idp.token())
    forged_kids = [idp.add_key("rsa", publish=False) for _ in range(3)]
    clock.advance(30)
    for kid in forged_kids:
        with pytest.raises(AuthenticationError):
            await verifier.verify(idp.token(kid=kid))
    assert idp.jwks_requests == 2  # one refetch for three unknown kids
    clock.advance(29)
    new = idp.add_key("rsa")
    with pytest.raises(AuthenticationError):  # published, but within the interval: not fetched yet
        await verifier.verify(idp.token(kid=new))
    assert idp.jwks_requests == 2
    clock.advance(1)
    assert (await verifier.verify(idp.token(kid=new))).subject == "user-1"
    assert idp.jwks_requests == 3


async def test_concurrent_requests_share_one_fetch(idp: OidcIssuer, verifier: OidcVerifier) -> None:
    tokens = [idp.token(sub=f"user-{n}") for n in range(20)]
    principals = await asyncio.gather(*(verifier.verify(token) for token in tokens))
    assert [p.subject for p in principals] == [f"user-{n}" for n in range(20)]
    assert idp.discovery_requests == 1
    assert idp.jwks_requests == 1


async def test_a_jwks_outage_keeps_the_last_good_keys(
    idp: OidcIssuer, clock: ManualClock, verifier: OidcVerifier, caplog: pytest.LogCaptureFixture
) -> None:
    token = idp.token()
    await verifier.verify(token)
    idp.jwks_status = 503
    clock.advance(601)  # past jwks_ttl: stale, refreshed in the background, cached keys still used
    caplog.set_level(logging.WARNING, logger="interlace.security.oidc")
    assert (await verifier.verify(token)).subject == "user-1"
    keys = verifier.keys(idp.issuer)
    refresh = keys.background_refresh
    assert refresh is not None
    await refresh
    assert idp.jwks_requests == 2
    assert keys.last_error is not None
    assert "503" in keys.last_error
    assert "keeping the last good key set" in caplog.text
    assert (await verifier.verify(token)).subject == "user-1"  # still verifies
    assert keys.background_refresh is refresh  # no new attempt within refetch_interval
    assert idp.jwks_requests == 2
    # an unknown kid during the outage: one refetch attempt (failing), then a 401, not a 503
    clock.advance(30)
    stranger = idp.add_key("rsa", publish=False)
    with pytest.raises(AuthenticationError) as caught:
        await verifier.verify(idp.token(kid=stranger))
    assert caught.value.code == "unknown_signing_key"
    assert idp.jwks_requests == 3
    # the issuer recovers: the next stale check fetches again
    idp.jwks_status = 200
    clock.advance(30)
    await verifier.verify(token)
    refresh = keys.background_refresh
    assert refresh is not None
    await refresh
    assert verifier.keys(idp.issuer).last_error is None  # (re-read: mypy narrowed the attribute)
    assert idp.jwks_requests == 4


async def test_stale_keys_are_refreshed_in_the_background(
    idp: OidcIssuer, clock: ManualClock, verifier: OidcVerifier
) -> None:
    await verifier.verify(idp.token())
    clock.advance(300)
    await verifier.verify(idp.token())
    assert verifier.keys(idp.issuer).background_refresh is None  # fresh for 600 s
    clock.advance(300)
    await verifier.verify(idp.token())
    refresh = verifier.keys(idp.issuer).background_refresh
    assert refresh is not None
    await refresh
    assert idp.jwks_requests == 2


async def test_no_key_set_yet_is_a_503_with_retry_after(clock: ManualClock) -> None:
    with OidcIssuer() as idp:
        idp.jwks_status = 500
        verifier = verifier_for(idp, clock)
        try:
            await verifier.start()  # never fatal
            with pytest.raises(ServiceUnavailable) as caught:
                await verifier.verify(idp.token())
            assert caught.value.status == 503
            assert caught.value.code == "identity_provider_unavailable"
            assert caught.value.headers["retry-after"] == "30"
            assert idp.jwks_requests == 1  # within the interval: no second attempt
            clock.advance(30)
            idp.jwks_status = 200
            assert (await verifier.verify(idp.token())).subject == "user-1"
            assert idp.jwks_requests == 2
        finally:
            await verifier.aclose()


async def test_a_discovery_document_for_another_issuer_is_refused(clock: ManualClock) -> None:
    with OidcIssuer() as idp:
        idp.discovery_issuer = "https://impostor.example.com"
        verifier = verifier_for(idp, clock)
        try:
            with pytest.raises(ServiceUnavailable) as caught:
                await verifier.verify(idp.token())
            assert "impostor" in caught.value.message
            assert idp.jwks_requests == 0
        finally:
            await verifier.aclose()


async def test_an_explicit_jwks_url_skips_discovery(clock: ManualClock) -> None:
    with OidcIssuer(path="/tenant") as idp:
        verifier = verifier_for(idp, clock, jwks_url=f"{idp.issuer}/protocol/certs")
        try:
            assert (await verifier.verify(idp.token())).subject == "user-1"
            assert (idp.discovery_requests, idp.jwks_requests) == (0, 1)
        finally:
            await verifier.aclose()


async def test_unusable_jwks_entries_are_skipped_not_fatal(
    idp: OidcIssuer, clock: ManualClock, verifier: OidcVerifier, caplog: pytest.LogCaptureFixture
) -> None:
    small = RSAAlgorithm.to_jwk(rsa.generate_private_key(65537, 1024).public_key(), as_dict=True)
    private = RSAAlgorithm.to_jwk(rsa.generate_private_key(65537, 2048), as_dict=True)
    secret = base64.urlsafe_b64encode(b"s" * 32).decode().rstrip("=")
    idp.extra_jwks = [
        {"kty": "oct", "kid": "hmac", "k": secret},
        {**small, "kid": "small"},
        {**private, "kid": "private"},
        {"kty": "RSA", "kid": "broken", "n": "!!", "e": "AQAB"},
        {"kty": "EC", "kid": "k1", "crv": "secp256k1", "x": "AA", "y": "AA"},
        {**small, "kid": "enc", "use": "enc"},
        "not an object",
    ]
    caplog.set_level(logging.WARNING, logger="interlace.security.oidc")
    assert (await verifier.verify(idp.token())).subject == "user-1"
    keys = verifier.keys(idp.issuer).keys
    assert keys is not None
    assert keys.kids == {idp.current_kid}
    for kid in ("hmac", "small", "private", "broken", "k1", "enc"):
        assert f"key '{kid}'" in caplog.text


@pytest.mark.parametrize(
    "document", [[], {"keys": "none"}, {"no": "keys"}, "text"], ids=["list", "keys-str", "no-keys", "text"]
)
def test_a_document_that_is_no_jwk_set_is_an_error(document: Any) -> None:
    with pytest.raises(ValueError, match="not a JWK Set"):
        KeySet.from_jwks(document, source="https://idp.example.com/certs")


async def test_verifier_with_an_injected_fetcher() -> None:
    """The fetch port: an in-memory issuer (no socket) for unit tests of mapping and caching."""
    with OidcIssuer() as idp:
        issuer, jwks, token = idp.issuer, idp.public_jwks(), idp.token()
    fetched: list[str] = []

    async def fetch(url: str) -> Any:
        fetched.append(url)
        if url.endswith("openid-configuration"):
            return {"issuer": issuer, "jwks_uri": f"{issuer}/certs"}
        return jwks

    config = oidc_config(issuer_entry(idp))
    verifier = OidcVerifier(config, fetch=fetch)
    assert (await verifier.verify(token)).subject == "user-1"
    assert fetched == [f"{issuer}/.well-known/openid-configuration", f"{issuer}/certs"]
    await verifier.aclose()
