"""From a verified token's claims to a :class:`~interlace.core.principal.Principal`, by configuration.

Claim paths are dotted (``realm_access.roles``, ``groups.0``: a number indexes a list); a claim whose
own name contains dots (Auth0's ``https://example.com/org``) is looked up by its full name first.

- **tenant**: the static ``tenant``, else the ``tenant_claim``, else ``default_tenant``; a token with
  none of them is rejected (every token belongs to a tenant);
- **subject**: ``subject_claim`` (``sub``); the principal's id is ``jwt:<issuer>#<sub>``;
- **scopes**: ``scopes_claim`` holds a space-separated string or a list; ``interlace:<endpoint>``
  grants an endpoint family and ``interlace:model:<alias>`` a model (prefixes configurable); other
  scopes (``openid``, another API's) are ignored. A token without any endpoint (model) scope gets
  ``default_endpoints`` (``default_models``): every one unless configured.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Final

from interlace.core.errors import AuthenticationError
from interlace.core.principal import ENDPOINTS, Limits, Principal

if TYPE_CHECKING:
    from collections.abc import Mapping

    from interlace.config.oidc import OidcIssuerConfig

__all__ = ["ClaimMapper", "claim_at"]

_MISSING: Final = object()
_TENANT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:@/-]{0,127}$")
_MAX_SCOPES = 256


def claim_at(claims: Mapping[str, Any], path: str) -> Any:
    """The value at a dotted ``path`` in ``claims``, or ``None`` when any step is missing."""
    if path in claims:
        return claims[path]
    value: Any = claims
    for step in path.split("."):
        if isinstance(value, dict):
            value = value.get(step, _MISSING)
        elif isinstance(value, list) and step.isdigit() and int(step) < len(value):
            value = value[int(step)]
        else:
            return None
        if value is _MISSING:
            return None
    return value


def _invalid(message: str) -> AuthenticationError:
    return AuthenticationError(message, code="invalid_token")


class ClaimMapper:
    """One issuer's mapping; built once per issuer, applied to every token it verified."""

    def __init__(self, config: OidcIssuerConfig) -> None:
        self._issuer = config.issuer
        self._claims = config.claims
        self._limits = Limits(
            rpm=config.limits.rpm,
            tpm=config.limits.tpm,
            budget_usd=config.budget.usd,
            soft_budget_usd=config.budget.soft_usd,
            budget_period=config.budget.period,
        )
        claims = config.claims
        self._default_endpoints = (
            None if claims.default_endpoints is None else frozenset(claims.default_endpoints)
        )
        self._default_models = None if claims.default_models is None else frozenset(claims.default_models)

    def principal(self, claims: Mapping[str, Any]) -> Principal:
        """The caller the (already verified) ``claims`` describe; 401 when a required one is unusable."""
        subject = self._subject(claims)
        endpoints, models = self._scopes(claims)
        return Principal(
            kind="token",
            id=f"jwt:{self._issuer}#{subject}",
            tenant=self._tenant(claims),
            team=self._optional_string(claims, self._claims.team_claim),
            subject=subject,
            models=models,
            endpoints=endpoints,
            limits=self._limits,
            metadata={"issuer": self._issuer},
        )

    def _subject(self, claims: Mapping[str, Any]) -> str:
        path = self._claims.subject_claim
        subject = claim_at(claims, path)
        if not isinstance(subject, str | int) or isinstance(subject, bool) or subject == "":
            raise _invalid(f"Invalid token: the subject claim '{path}' is missing or not a string.")
        return str(subject)

    def _tenant(self, claims: Mapping[str, Any]) -> str:
        config = self._claims
        if config.tenant is not None:
            return config.tenant
        tenant = self._optional_string(claims, config.tenant_claim)
        if tenant is None:
            tenant = config.default_tenant
        if tenant is None:
            raise _invalid(f"Invalid token: it has no tenant claim '{config.tenant_claim}'.")
        if not _TENANT.match(tenant):
            raise _invalid(
                f"Invalid token: the tenant claim '{config.tenant_claim}' is not a tenant id "
                "(1-128 letters, digits and ._:@/-)."
            )
        return tenant

    @staticmethod
    def _optional_string(claims: Mapping[str, Any], path: str | None) -> str | None:
        if path is None:
            return None
        value = claim_at(claims, path)
        if value is None or value == "":
            return None
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise _invalid(f"Invalid token: the claim '{path}' must be a string.")
        return str(value)

    def _scopes(self, claims: Mapping[str, Any]) -> tuple[frozenset[str] | None, frozenset[str] | None]:
        config = self._claims
        scopes = self._scope_values(claims)
        endpoints: set[str] = set()
        models: set[str] = set()
        for scope in scopes:
            if scope.startswith(config.model_scope_prefix) and len(scope) > len(config.model_scope_prefix):
                models.add(scope.removeprefix(config.model_scope_prefix))
            elif scope.startswith(config.endpoint_scope_prefix):
                endpoint = scope.removeprefix(config.endpoint_scope_prefix)
                if endpoint in ENDPOINTS:
                    endpoints.add(endpoint)
        return (
            frozenset(endpoints) if endpoints else self._default_endpoints,
            frozenset(models) if models else self._default_models,
        )

    def _scope_values(self, claims: Mapping[str, Any]) -> list[str]:
        path = self._claims.scopes_claim
        if path is None:
            return []
        value = claim_at(claims, path)
        if value is None:
            return []
        if isinstance(value, str):
            values = value.split()
        elif isinstance(value, list) and all(isinstance(item, str) for item in value):
            values = list(value)
        else:
            raise _invalid(
                f"Invalid token: the scopes claim '{path}' must be a space-separated string "
                "or a list of strings."
            )
        if len(values) > _MAX_SCOPES:
            raise _invalid(f"Invalid token: the scopes claim '{path}' holds more than {_MAX_SCOPES} scopes.")
        return values
