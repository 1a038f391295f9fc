"""Shared helpers of the OIDC tests: a verifier for a running test issuer, a manual clock, forged tokens."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from typing import Any

import orjson

from interlace.config.oidc import OidcConfig
from interlace.security.oidc import OidcVerifier
from interlace.testing.oidc_issuer import OidcIssuer


class ManualClock:
    """Monotonic seconds that move only when the test says so (the key cache's TTL and rate limit)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def issuer_entry(idp: OidcIssuer, **overrides: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "issuer": idp.issuer,
        "audience": idp.audience,
        "claims": {"tenant_claim": "org_id", "default_tenant": "default"},
    }
    entry.update(overrides)
    return entry


def oidc_config(*entries: dict[str, Any], **settings: Any) -> OidcConfig:
    return OidcConfig.model_validate({"issuers": list(entries), **settings})


def verifier_for(idp: OidcIssuer, clock: ManualClock | None = None, **overrides: Any) -> OidcVerifier:
    settings = {k: overrides.pop(k) for k in ("jwks_ttl", "refetch_interval") if k in overrides}
    config = oidc_config(issuer_entry(idp, **overrides), **settings)
    return OidcVerifier(config) if clock is None else OidcVerifier(config, clock=clock)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def claims_for(idp: OidcIssuer, **claims: Any) -> dict[str, Any]:
    now = int(time.time())
    return {"iss": idp.issuer, "aud": idp.audience, "sub": "mallory", "iat": now, "exp": now + 300, **claims}


def unsigned_token(header: dict[str, Any], claims: dict[str, Any]) -> str:
    """``alg: none``: a header and claims with an empty signature."""
    return f"{_b64(orjson.dumps(header))}.{_b64(orjson.dumps(claims))}."


def hmac_token(header: dict[str, Any], claims: dict[str, Any], secret: bytes) -> str:
    """A token MACed with ``secret`` (the algorithm-confusion attack uses the public key's PEM)."""
    signing_input = f"{_b64(orjson.dumps(header))}.{_b64(orjson.dumps(claims))}"
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(signature)}"
