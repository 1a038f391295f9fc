"""``auth.oidc:``: bearer JWTs from OpenID Connect issuers (Keycloak, Entra ID, Auth0, Okta, Dex …).

Each trusted issuer is listed with the audience its tokens must carry; its signing keys come from its
discovery document (``{issuer}/.well-known/openid-configuration`` → ``jwks_uri``) or an explicit
``jwks_url``, and are cached. Claims become the caller's tenant, team, subject, scopes and limits::

    auth:
      oidc:
        issuers:
          - issuer: https://login.example.com/realms/acme
            audience: interlace
            claims:
              tenant_claim: org_id          # or `tenant: acme` for a single-tenant issuer
              team_claim: groups.0
              scopes_claim: realm_access.roles
            limits: {rpm: 600}              # per subject, like a key's own limits
            budget: {usd: 50, period: day}

Only asymmetric algorithms can be allowed (a shared HMAC secret would let every holder mint tokens),
and the clock skew tolerated on ``exp``/``nbf``/``iat`` is bounded.
"""

from __future__ import annotations

import ipaddress
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator

from interlace.config._base import Strict
from interlace.config.quotas import BudgetConfig, RateLimits
from interlace.core.principal import ENDPOINTS

__all__ = [
    "DEFAULT_ALGORITHMS",
    "Algorithm",
    "OidcClaims",
    "OidcConfig",
    "OidcIssuerConfig",
]

Algorithm = Literal["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"]
"""The JWS algorithms a verifier may allow: asymmetric only (never ``HS*``, never ``none``)."""

DEFAULT_ALGORITHMS: tuple[Algorithm, ...] = ("RS256", "RS384", "RS512", "PS256", "ES256", "ES384", "EdDSA")

MAX_CLOCK_SKEW = 300.0


def _checked_url(url: str, what: str) -> str:
    """An https URL, or http only on a loopback host (a local test issuer)."""
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        msg = f"{what} '{url}' must be an https:// URL"
        raise ValueError(msg)
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        msg = f"{what} '{url}' must use https:// (plain http is accepted only on a loopback host)"
        raise ValueError(msg)
    return url


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class OidcClaims(Strict):
    """How a token's claims become the caller's identity. Claim paths are dotted
    (``realm_access.roles``, ``groups.0``); a claim whose own name contains dots
    (``https://example.com/org``) is found by its full name first."""

    subject_claim: str = Field("sub", min_length=1, description="The end user's id (Principal.subject).")
    tenant: str | None = Field(
        None, min_length=1, description="A static tenant for every token of this issuer (wins over claims)."
    )
    tenant_claim: str | None = Field(
        None, min_length=1, description="The claim holding the tenant id, e.g. 'org_id' or 'tid'."
    )
    default_tenant: str | None = Field(
        None, min_length=1, description="The tenant of a token without the tenant claim (else 401)."
    )
    team_claim: str | None = Field(None, min_length=1, description="The claim holding the team, if any.")
    scopes_claim: str | None = Field(
        "scope",
        description="The claim holding the token's scopes: a space-separated string (OAuth 'scope') "
        "or a list ('realm_access.roles', 'scp', 'roles'). Unset: scopes are not read.",
    )
    endpoint_scope_prefix: str = Field(
        "interlace:",
        description="A scope '<prefix><endpoint>' (e.g. 'interlace:chat') grants that endpoint family.",
    )
    model_scope_prefix: str = Field(
        "interlace:model:",
        min_length=1,
        description="A scope '<prefix><alias>' (e.g. 'interlace:model:gpt-4o') grants that model alias.",
    )
    default_endpoints: list[str] | None = Field(
        None,
        description="Endpoint families of a token that carries no endpoint scope; unset: every one, "
        "[]: none (scopes required).",
    )
    default_models: list[str] | None = Field(
        None,
        description="Model aliases of a token that carries no model scope; unset: every one, "
        "[]: none (scopes required).",
    )

    @field_validator("default_endpoints")
    @classmethod
    def _known_endpoints(cls, endpoints: list[str] | None) -> list[str] | None:
        unknown = sorted(set(endpoints or ()) - ENDPOINTS)
        if unknown:
            msg = f"unknown endpoint families {unknown}; choose from {sorted(ENDPOINTS)}"
            raise ValueError(msg)
        return endpoints

    @model_validator(mode="after")
    def _has_a_tenant_source(self) -> OidcClaims:
        if self.tenant is None and self.tenant_claim is None and self.default_tenant is None:
            msg = "every token belongs to a tenant: set tenant_claim (e.g. org_id), tenant or default_tenant"
            raise ValueError(msg)
        if self.endpoint_scope_prefix and self.model_scope_prefix == self.endpoint_scope_prefix:
            msg = "model_scope_prefix must differ from endpoint_scope_prefix"
            raise ValueError(msg)
        return self


class OidcIssuerConfig(Strict):
    """One trusted issuer."""

    issuer: str = Field(
        description="Exactly the tokens' 'iss' claim, e.g. https://login.example.com/realms/acme."
    )
    audience: str | list[str] = Field(
        description="The 'aud' a token must carry (one of these): the client id or API identifier."
    )
    jwks_url: str | None = Field(None, description="The key set's URL; unset: from the discovery document.")
    algorithms: list[Algorithm] = Field(
        default_factory=lambda: list(DEFAULT_ALGORITHMS),
        min_length=1,
        description="The allowed JWS algorithms (asymmetric only).",
    )
    clock_skew: float = Field(
        60.0, ge=0, le=MAX_CLOCK_SKEW, description="Seconds of clock difference tolerated on exp, nbf, iat."
    )
    claims: OidcClaims = Field(description="How claims map to tenant, team, subject, scopes.")
    limits: RateLimits = Field(
        default_factory=RateLimits, description="Each token subject's own rpm and tpm (unset: unlimited)."
    )
    budget: BudgetConfig = Field(
        default_factory=BudgetConfig, description="Each token subject's own spend limit (unset: none)."
    )

    @field_validator("issuer")
    @classmethod
    def _issuer_url(cls, issuer: str) -> str:
        return _checked_url(issuer, "issuer")

    @field_validator("jwks_url")
    @classmethod
    def _jwks_url(cls, url: str | None) -> str | None:
        return None if url is None else _checked_url(url, "jwks_url")

    @field_validator("audience")
    @classmethod
    def _some_audience(cls, audience: str | list[str]) -> str | list[str]:
        values = [audience] if isinstance(audience, str) else audience
        if not values or any(not value for value in values):
            msg = "audience must name the client id or API identifier tokens are issued for"
            raise ValueError(msg)
        return audience

    @property
    def audiences(self) -> tuple[str, ...]:
        return (self.audience,) if isinstance(self.audience, str) else tuple(self.audience)


class OidcConfig(Strict):
    """Trusted issuers and how their signing keys are cached."""

    issuers: list[OidcIssuerConfig] = Field(min_length=1)
    jwks_ttl: float = Field(
        600.0,
        ge=10,
        description="Seconds a fetched key set is used before it is refreshed in the background.",
    )
    refetch_interval: float = Field(
        30.0,
        ge=1,
        description="Least seconds between two fetches of one issuer's keys for an unknown 'kid' "
        "(key rotation) or after a failure.",
    )
    fetch_timeout: float = Field(5.0, gt=0, le=60, description="Seconds for one discovery or JWKS fetch.")

    @field_validator("issuers")
    @classmethod
    def _unique_issuers(cls, issuers: list[OidcIssuerConfig]) -> list[OidcIssuerConfig]:
        seen: set[str] = set()
        for entry in issuers:
            if entry.issuer in seen:
                msg = f"issuer '{entry.issuer}' is listed twice"
                raise ValueError(msg)
            seen.add(entry.issuer)
        return issuers
