"""``auth.oidc`` configuration and the mapping of claims to tenant, team, subject, scopes and limits."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from interlace.config import ConfigErrors, parse_config
from interlace.config.oidc import DEFAULT_ALGORITHMS, OidcConfig, OidcIssuerConfig
from interlace.core.errors import AuthenticationError
from interlace.core.principal import Limits
from interlace.security.oidc import ClaimMapper, claim_at

ISSUER = "https://login.example.com/realms/acme"


def issuer_config(**overrides: Any) -> OidcIssuerConfig:
    entry: dict[str, Any] = {"issuer": ISSUER, "audience": "interlace", "claims": {"tenant_claim": "org_id"}}
    entry.update(overrides)
    return OidcIssuerConfig.model_validate(entry)


def mapped(token_claims: dict[str, Any], **overrides: Any) -> Any:
    return ClaimMapper(issuer_config(**overrides)).principal({"sub": "alice", **token_claims})


# --- configuration -----------------------------------------------------------------------------------


def test_yaml_config_with_defaults() -> None:
    config = parse_config(
        f"""
auth:
  oidc:
    issuers:
      - issuer: {ISSUER}
        audience: [interlace, api://interlace]
        claims: {{tenant_claim: org_id}}
        limits: {{rpm: 60}}
        budget: {{usd: 5, period: day}}
""",
        filename="test.yaml",
        environ={},
    )
    oidc = config.auth.oidc
    assert oidc is not None
    assert config.auth.enabled  # OIDC alone turns authentication on
    entry = oidc.issuers[0]
    assert entry.audiences == ("interlace", "api://interlace")
    assert tuple(entry.algorithms) == DEFAULT_ALGORITHMS
    assert (entry.clock_skew, oidc.jwks_ttl, oidc.refetch_interval) == (60.0, 600.0, 30.0)
    assert entry.claims.scopes_claim == "scope"


@pytest.mark.parametrize(
    ("change", "complaint"),
    [
        ({"algorithms": ["HS256"]}, "algorithms"),
        ({"algorithms": ["none"]}, "algorithms"),
        ({"algorithms": []}, "algorithms"),
        ({"clock_skew": 301}, "clock_skew"),
        ({"clock_skew": -1}, "clock_skew"),
        ({"issuer": "http://login.example.com"}, "https"),
        ({"issuer": "login.example.com"}, "https"),
        ({"jwks_url": "http://login.example.com/certs"}, "https"),
        ({"audience": []}, "audience"),
        ({"audience": ""}, "audience"),
        ({"claims": {}}, "tenant"),
        ({"claims": {"tenant": "acme", "default_endpoints": ["chat", "admin"]}}, "admin"),
        (
            {
                "claims": {
                    "tenant": "acme",
                    "model_scope_prefix": "interlace:",
                    "endpoint_scope_prefix": "interlace:",
                }
            },
            "differ",
        ),
        ({"claims": {"tenant": "acme", "unknown": 1}}, "unknown"),
    ],
)
def test_invalid_issuer_settings_are_refused(change: dict[str, Any], complaint: str) -> None:
    with pytest.raises(ValidationError, match=complaint):
        issuer_config(**change)


def test_plain_http_is_accepted_only_on_loopback() -> None:
    assert issuer_config(issuer="http://127.0.0.1:8080/realms/x").issuer.startswith("http://")
    assert issuer_config(issuer="http://localhost:8080", jwks_url="http://[::1]:8080/certs").jwks_url


def test_an_issuer_is_listed_once_and_at_least_one_is_needed() -> None:
    entry = {"issuer": ISSUER, "audience": "a", "claims": {"tenant": "t"}}
    with pytest.raises(ValidationError, match="listed twice"):
        OidcConfig.model_validate({"issuers": [entry, entry]})
    with pytest.raises(ValidationError, match="issuers"):
        OidcConfig.model_validate({"issuers": []})


def test_yaml_errors_point_at_the_line() -> None:
    with pytest.raises(ConfigErrors) as caught:
        parse_config(
            f"""auth:
  oidc:
    issuers:
      - issuer: {ISSUER}
        audience: interlace
        algorithms: [HS256]
        claims: {{tenant: acme}}
""",
            filename="test.yaml",
            environ={},
        )
    assert "test.yaml:6" in str(caught.value)


# --- claim paths -------------------------------------------------------------------------------------


def test_claim_paths() -> None:
    claims = {
        "org_id": "acme",
        "realm_access": {"roles": ["interlace:chat"]},
        "groups": ["sales", "eng"],
        "https://example.com/org": "namespaced",
    }
    assert claim_at(claims, "org_id") == "acme"
    assert claim_at(claims, "realm_access.roles") == ["interlace:chat"]
    assert claim_at(claims, "groups.1") == "eng"
    assert claim_at(claims, "https://example.com/org") == "namespaced"
    for missing in ("nope", "realm_access.nope", "groups.5", "groups.x", "org_id.deeper"):
        assert claim_at(claims, missing) is None


# --- tenant, team, subject ---------------------------------------------------------------------------


def test_tenant_from_a_claim_a_static_value_or_a_default() -> None:
    assert mapped({"org_id": "acme"}).tenant == "acme"
    assert mapped({"org_id": 42}).tenant == "42"
    static = {"claims": {"tenant": "fixed", "tenant_claim": "org_id"}}
    assert mapped({"org_id": "acme"}, **static).tenant == "fixed"
    fallback = {"claims": {"tenant_claim": "org_id", "default_tenant": "shared"}}
    assert mapped({}, **fallback).tenant == "shared"
    assert mapped({"org_id": "acme"}, **fallback).tenant == "acme"
    nested = {"claims": {"tenant_claim": "https://example.com/org"}}
    assert mapped({"https://example.com/org": "ns-tenant"}, **nested).tenant == "ns-tenant"


@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        ({}, "no tenant claim 'org_id'"),
        ({"org_id": ""}, "no tenant claim"),
        ({"org_id": {"id": "acme"}}, "must be a string"),
        ({"org_id": True}, "must be a string"),
        ({"org_id": "acme corp; drop"}, "not a tenant id"),
        ({"org_id": "x" * 200}, "not a tenant id"),
    ],
)
def test_a_token_without_a_usable_tenant_is_refused(claims: dict[str, Any], reason: str) -> None:
    with pytest.raises(AuthenticationError, match=reason) as caught:
        mapped(claims)
    assert caught.value.status == 401
    assert caught.value.code == "invalid_token"


def test_team_subject_and_id() -> None:
    overrides = {"claims": {"tenant_claim": "org_id", "team_claim": "groups.0", "subject_claim": "oid"}}
    principal = ClaimMapper(issuer_config(**overrides)).principal(
        {"oid": "0000-1111", "sub": "pairwise", "org_id": "acme", "groups": ["sales"]}
    )
    assert principal.subject == "0000-1111"
    assert principal.id == f"jwt:{ISSUER}#0000-1111"
    assert principal.team == "sales"
    assert principal.metadata == {"issuer": ISSUER}
    assert (
        mapped(
            {"org_id": "acme"}, **overrides | {"claims": {"tenant_claim": "org_id", "team_claim": "team"}}
        ).team
        is None
    )
    with pytest.raises(AuthenticationError, match="subject claim 'sub'"):
        ClaimMapper(issuer_config()).principal({"org_id": "acme", "sub": ["a"]})
    with pytest.raises(AuthenticationError, match="subject claim"):
        ClaimMapper(issuer_config()).principal({"org_id": "acme"})


# --- scopes ------------------------------------------------------------------------------------------


def test_oauth_scope_string_grants_endpoints_and_models() -> None:
    principal = mapped(
        {
            "org_id": "acme",
            "scope": "openid profile interlace:chat interlace:embeddings interlace:model:gpt-4o",
        }
    )
    assert principal.endpoints == frozenset({"chat", "embeddings"})
    assert principal.models == frozenset({"gpt-4o"})
    assert principal.may_call("chat")
    assert not principal.may_call("jobs")
    assert principal.may_use_model("gpt-4o")
    assert not principal.may_use_model("claude")


def test_roles_list_at_a_nested_path() -> None:
    overrides = {"claims": {"tenant_claim": "org_id", "scopes_claim": "realm_access.roles"}}
    principal = mapped(
        {
            "org_id": "acme",
            "realm_access": {"roles": ["offline_access", "interlace:classify", "interlace:nope"]},
        },
        **overrides,
    )
    assert principal.endpoints == frozenset({"classify"})  # unknown endpoint names are ignored
    assert principal.models is None


def test_without_scopes_the_defaults_apply() -> None:
    assert mapped({"org_id": "acme", "scope": "openid"}).endpoints is None  # unset: every endpoint
    strict = {"claims": {"tenant_claim": "org_id", "default_endpoints": [], "default_models": ["small"]}}
    principal = mapped({"org_id": "acme", "scope": "openid"}, **strict)
    assert principal.endpoints == frozenset()
    assert not principal.may_call("chat")
    assert principal.models == frozenset({"small"})
    assert (
        mapped({"org_id": "acme", "scope": "openid"}, claims={"tenant": "t", "scopes_claim": None}).endpoints
        is None
    )


def test_custom_scope_prefixes() -> None:
    overrides = {
        "claims": {
            "tenant": "t",
            "scopes_claim": "scp",
            "endpoint_scope_prefix": "ai.",
            "model_scope_prefix": "model/",
        }
    }
    principal = mapped({"scp": ["ai.chat", "model/gpt-4o", "interlace:jobs"]}, **overrides)
    assert principal.endpoints == frozenset({"chat"})
    assert principal.models == frozenset({"gpt-4o"})


@pytest.mark.parametrize("scopes", [{"a": 1}, ["chat", 3], 7, ["x"] * 300])
def test_malformed_scopes_are_refused(scopes: Any) -> None:
    with pytest.raises(AuthenticationError, match="scopes claim 'scope'"):
        mapped({"org_id": "acme", "scope": scopes})


# --- limits ------------------------------------------------------------------------------------------


def test_limits_and_budget_from_config() -> None:
    principal = mapped(
        {"org_id": "acme"},
        limits={"rpm": 60, "tpm": 10000},
        budget={"usd": 5, "soft_usd": 4, "period": "day"},
    )
    assert principal.limits == Limits(rpm=60, tpm=10000, budget_usd=5, soft_budget_usd=4, budget_period="day")
    assert mapped({"org_id": "acme"}).limits == Limits()
