"""The OIDC verifier against a real issuer on 127.0.0.1: good tokens in, every listed attack out with 401.

Each rejection is checked for its status, its stable code and a message that says why.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import jwt
import pytest
from tests.support.oidc import (
    ManualClock,
    claims_for,
    hmac_token,
    issuer_entry,
    oidc_config,
    unsigned_token,
    verifier_for,
)

from interlace.core.errors import AuthenticationError
from interlace.security.oidc import MAX_TOKEN_BYTES, OidcVerifier, looks_like_jwt
from interlace.testing.oidc_issuer import OidcIssuer


@pytest.fixture
def idp() -> Iterator[OidcIssuer]:
    with OidcIssuer(path="/realms/acme") as issuer:
        yield issuer


VerifierFactory = Callable[..., OidcVerifier]


@pytest.fixture
async def make_verifier() -> AsyncIterator[VerifierFactory]:
    made: list[OidcVerifier] = []

    def factory(idp: OidcIssuer, clock: ManualClock | None = None, **overrides: Any) -> OidcVerifier:
        verifier = verifier_for(idp, clock, **overrides)
        made.append(verifier)
        return verifier

    yield factory
    for verifier in made:
        await verifier.aclose()


async def rejected(verifier: OidcVerifier, token: str) -> AuthenticationError:
    with pytest.raises(AuthenticationError) as caught:
        await verifier.verify(token)
    assert caught.value.status == 401
    return caught.value


# --- accepted tokens ---------------------------------------------------------------------------------


async def test_a_valid_token_becomes_a_token_principal(
    idp: OidcIssuer, make_verifier: VerifierFactory
) -> None:
    verifier = make_verifier(idp)
    principal = await verifier.verify(idp.token(sub="alice", org_id="acme"))
    assert principal.kind == "token"
    assert principal.id == f"jwt:{idp.issuer}#alice"
    assert principal.subject == "alice"
    assert principal.tenant == "acme"
    assert principal.endpoints is None
    assert principal.models is None
    assert idp.discovery_requests == 1
    assert idp.jwks_requests == 1
    await verifier.verify(idp.token(sub="bob", org_id="acme"))
    assert idp.jwks_requests == 1  # cached


@pytest.mark.parametrize(
    ("kind", "alg"),
    [
        ("rsa", "RS256"),
        ("rsa", "RS384"),
        ("rsa", "RS512"),
        ("rsa", "PS256"),
        ("ec-p256", "ES256"),
        ("ec-p384", "ES384"),
        ("ed25519", "EdDSA"),
    ],
)
async def test_every_default_algorithm_verifies(
    idp: OidcIssuer, make_verifier: VerifierFactory, kind: Any, alg: str
) -> None:
    kid = idp.add_key(kind)
    verifier = make_verifier(idp)
    principal = await verifier.verify(idp.token(kid=kid, alg=alg, sub="carol"))
    assert principal.subject == "carol"
    assert principal.tenant == "default"  # no org_id claim: the default tenant


async def test_start_prefetches_and_is_never_fatal(make_verifier: VerifierFactory) -> None:
    with OidcIssuer() as idp:
        verifier = make_verifier(idp)
        await verifier.start()
        assert idp.jwks_requests == 1
        assert verifier.keys(idp.issuer).keys is not None
        down = make_verifier(idp)
    # the issuer is gone: start() logs and returns; verification answers 503 until keys are fetched
    await down.start()
    assert down.keys(idp.issuer).keys is None
    assert down.keys(idp.issuer).last_error is not None


# --- the attacks --------------------------------------------------------------------------------------


async def test_alg_none_is_rejected(idp: OidcIssuer, make_verifier: VerifierFactory) -> None:
    verifier = make_verifier(idp)
    token = unsigned_token({"alg": "none", "typ": "JWT", "kid": idp.current_kid}, claims_for(idp))
    error = await rejected(verifier, token)
    assert error.code == "algorithm_not_allowed"
    assert "alg 'none'" in error.message
    error = await rejected(verifier, unsigned_token({"alg": "None"}, claims_for(idp)))
    assert error.code == "algorithm_not_allowed"
    assert idp.jwks_requests == 0  # rejected before any key was needed


async def test_hs256_signed_with_the_rsa_public_key_is_rejected(
    idp: OidcIssuer, make_verifier: VerifierFactory
) -> None:
    verifier = make_verifier(idp)
    kid = idp.current_kid
    assert kid is not None
    await verifier.verify(idp.token())  # the keys are cached: the attack has the public key at hand
    forged = hmac_token({"alg": "HS256", "typ": "JWT", "kid": kid}, claims_for(idp), idp.public_key_pem(kid))
    error = await rejected(verifier, forged)
    assert error.code == "algorithm_not_allowed"
    assert "symmetric" in error.message


async def test_an_alg_that_does_not_match_the_key_type_is_rejected(
    idp: OidcIssuer, make_verifier: VerifierFactory
) -> None:
    ec_kid = idp.add_key("ec-p384")
    verifier = make_verifier(idp)
    # an RS256 token naming the EC key (signed with an RSA key the attacker holds)
    hidden_rsa = idp.add_key("rsa", publish=False)
    forged = jwt.encode(claims_for(idp), idp.private_key(hidden_rsa), "RS256", {"kid": ec_kid})
    error = await rejected(verifier, forged)
    assert error.code == "algorithm_mismatch"
    assert ec_kid in error.message
    # ES256 (P-256) naming a P-384 key: the curve must match the algorithm too
    hidden_p256 = idp.add_key("ec-p256", publish=False)
    forged = jwt.encode(claims_for(idp), idp.private_key(hidden_p256), "ES256", {"kid": ec_kid})
    assert (await rejected(verifier, forged)).code == "algorithm_mismatch"
    assert (await verifier.verify(idp.token(kid=ec_kid))).subject == "user-1"


async def test_a_disallowed_asymmetric_algorithm_is_rejected(
    idp: OidcIssuer, make_verifier: VerifierFactory
) -> None:
    verifier = make_verifier(idp, algorithms=["RS256"])
    error = await rejected(verifier, idp.token(alg="RS512"))
    assert error.code == "algorithm_not_allowed"
    assert "allowed: RS256" in error.message


async def test_an_unknown_kid_is_rejected_after_one_refetch(
    idp: OidcIssuer, make_verifier: VerifierFactory
) -> None:
    clock = ManualClock()
    verifier = make_verifier(idp, clock=clock)
    await verifier.verify(idp.token())
    assert idp.jwks_requests == 1
    clock.advance(30)  # refetch_interval: at most one fetch per 30 s
    stranger = idp.add_key("rsa", publish=False)  # a key the issuer never announced
    error = await rejected(verifier, idp.token(kid=stranger))
    assert error.code == "unknown_signing_key"
    assert stranger in error.message
    assert idp.jwks_requests == 2  # one refetch: it could have been a rotation
    error = await rejected(verifier, idp.token(kid=stranger))
    assert idp.jwks_requests == 2  # rate-limited: no refetch per forged kid


async def test_a_token_signed_by_another_key_under_a_known_kid_is_rejected(
    idp: OidcIssuer, make_verifier: VerifierFactory
) -> None:
    verifier = make_verifier(idp)
    kid = idp.current_kid
    with OidcIssuer(path="/realms/acme", first_key="rsa") as attacker:
        claims = jwt.decode(idp.token(), options={"verify_signature": False})
        forged = jwt.encode(claims, attacker.private_key(attacker.current_kid or ""), "RS256", {"kid": kid})
    error = await rejected(verifier, forged)
    assert error.code == "invalid_signature"


async def test_a_tampered_payload_is_rejected(idp: OidcIssuer, make_verifier: VerifierFactory) -> None:
    verifier = make_verifier(idp)
    header, _, signature = idp.token(org_id="acme").split(".")
    other_claims = idp.token(org_id="other").split(".")[1]
    error = await rejected(verifier, f"{header}.{other_claims}.{signature}")
    assert error.code == "invalid_signature"


async def test_expired_and_not_yet_valid_tokens_are_rejected(
    idp: OidcIssuer, make_verifier: VerifierFactory
) -> None:
    verifier = make_verifier(idp)
    now = int(time.time())
    error = await rejected(verifier, idp.token(exp=now - 3600, iat=now - 7200))
    assert error.code == "token_expired"
    assert "expired" in error.message
    error = await rejected(verifier, idp.token(nbf=now + 3600))
    assert error.code == "token_not_yet_valid"
    assert "'nbf'" in error.message
    error = await rejected(verifier, idp.token(iat=now + 3600))  # issued in the future: a broken clock
    assert error.code == "token_not_yet_valid"
    assert "'iat'" in error.message
    error = await rejected(verifier, idp.token(iat="yesterday"))
    assert error.code == "invalid_token"


async def test_wrong_issuer_and_wrong_audience_are_rejected(
    idp: OidcIssuer, make_verifier: VerifierFactory
) -> None:
    verifier = make_verifier(idp)
    error = await rejected(verifier, idp.token(iss="https://evil.example.com"))
    assert error.code == "untrusted_issuer"
    assert "https://evil.example.com" in error.message
    error = await rejected(verifier, idp.token(aud="another-api"))
    assert error.code == "invalid_audience"
    assert "interlace" in error.message
    assert (await verifier.verify(idp.token(aud=["another-api", "interlace"]))).tenant == "default"


@pytest.mark.parametrize("claim", ["exp", "aud", "iss"])
async def test_required_claims_are_required(
    idp: OidcIssuer, make_verifier: VerifierFactory, claim: str
) -> None:
    verifier = make_verifier(idp)
    error = await rejected(verifier, idp.token(omit=(claim,)))
    assert error.code in {"invalid_token", "untrusted_issuer"}
    assert claim in error.message


async def test_malformed_and_oversized_tokens_are_rejected(
    idp: OidcIssuer, make_verifier: VerifierFactory
) -> None:
    verifier = make_verifier(idp)
    for garbage in ("a.b.c", "eyJhbGciOiJSUzI1NiJ9.bm90IGpzb24.c2ln", "..."):
        error = await rejected(verifier, garbage)
        assert error.code == "invalid_token"
    error = await rejected(verifier, idp.token(padding="x" * MAX_TOKEN_BYTES))
    assert "longer than" in error.message
    error = await rejected(verifier, unsigned_token({"alg": "RS256", "kid": 7}, claims_for(idp)) + "c2ln")
    assert error.code == "invalid_token"
    assert idp.jwks_requests == 0


def test_looks_like_jwt() -> None:
    assert looks_like_jwt("eyJh.eyJz.c2ln")
    assert looks_like_jwt("eyJh.eyJz.")  # alg none still goes to the verifier, which refuses it
    assert not looks_like_jwt("ik_0123456789abcdef_secret")
    assert not looks_like_jwt("a.b")
    assert not looks_like_jwt("..x")


# --- clock skew --------------------------------------------------------------------------------------


async def test_clock_skew_is_tolerated_within_its_bound(
    idp: OidcIssuer, make_verifier: VerifierFactory
) -> None:
    default = make_verifier(idp)  # 60 s
    strict = make_verifier(idp, clock_skew=0)
    lenient = make_verifier(idp, clock_skew=300)
    now = int(time.time())
    slightly_expired = idp.token(exp=now - 20, iat=now - 320)
    slightly_early = idp.token(nbf=now + 20, iat=now + 20)
    assert (await default.verify(slightly_expired)).subject == "user-1"
    assert (await default.verify(slightly_early)).subject == "user-1"
    assert (await rejected(strict, slightly_expired)).code == "token_expired"
    assert (await rejected(strict, slightly_early)).code == "token_not_yet_valid"
    expired_4_min = idp.token(exp=now - 240, iat=now - 540)
    assert (await rejected(default, expired_4_min)).code == "token_expired"
    assert (await lenient.verify(expired_4_min)).subject == "user-1"
    assert (await rejected(lenient, idp.token(exp=now - 600, iat=now - 900))).code == "token_expired"


# --- several issuers ---------------------------------------------------------------------------------


async def test_several_issuers_each_with_its_keys_and_mapping(idp: OidcIssuer) -> None:
    with OidcIssuer(path="/partner", audience="interlace-partner", first_key="ec-p256") as partner:
        config = oidc_config(
            issuer_entry(idp),
            issuer_entry(partner, claims={"tenant": "partner-co", "team_claim": "dept"}),
        )
        verifier = OidcVerifier(config)
        try:
            ours = await verifier.verify(idp.token(sub="alice", org_id="acme"))
            theirs = await verifier.verify(partner.token(sub="alice", dept="sales", org_id="acme"))
            assert (ours.tenant, ours.id) == ("acme", f"jwt:{idp.issuer}#alice")
            assert (theirs.tenant, theirs.team) == ("partner-co", "sales")
            assert theirs.id == f"jwt:{partner.issuer}#alice"
            # the partner's key cannot vouch for the first issuer's tokens
            claims = jwt.decode(idp.token(), options={"verify_signature": False})
            crossed = jwt.encode(
                claims, partner.private_key(partner.current_kid or ""), "ES256", {"kid": partner.current_kid}
            )
            assert (await rejected(verifier, crossed)).code == "unknown_signing_key"
        finally:
            await verifier.aclose()
