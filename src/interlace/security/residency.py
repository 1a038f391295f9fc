"""Residency and compliance: keep each request on the deployments its tenant's data may go to.

A rule (:class:`~interlace.config.residency.ResidencyConfig`) lists the allowed ``regions`` and
``provider_types``; a tenant's own rule (``tenants.<id>.residency``) replaces the global one
(``residency:``), which applies to every other request, the master key's included.

:class:`ResidencyPolicy` runs in the admission chain (:mod:`interlace.security.gate`) right after the
scopes. For a request a rule applies to it

- sets ``ctx.allow`` to the rule, so the router only ever calls allowed deployments — on the first
  attempt, retries, fallback chains, stream recovery and shadow mirroring (a mirror that has no
  allowed deployment is skipped);
- refuses the request with a 403 naming the rule and every excluded deployment when neither the
  requested model nor any of its fallbacks has an allowed deployment — before rate limits and budgets
  are charged;
- notes ``residency:<rule>`` (or ``residency:denied <rule> <model>``) in ``ctx.decisions`` for the audit log.

A request no rule applies to costs one dictionary look-up and leaves ``ctx.allow`` unset, so the
router's hot path does no extra work.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from interlace.core.errors import PermissionDenied

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from interlace.config.residency import ResidencyConfig
    from interlace.config.schema import Config, DeploymentConfig
    from interlace.routing.deployment import Deployment, ModelRoute
    from interlace.security.gate import Call, Hold

__all__ = ["DEFAULT_RULE", "ResidencyPolicy", "ResidencyRule"]

#: The name of the global rule (``residency:`` at the top level of the configuration).
DEFAULT_RULE = "default"


@dataclass(frozen=True, slots=True)
class ResidencyRule:
    """One residency rule, as the router's :class:`~interlace.routing.context.DeploymentFilter`."""

    name: str
    """``default`` or the tenant id."""
    regions: frozenset[str] | None = None
    provider_types: frozenset[str] | None = None

    @classmethod
    def from_config(cls, name: str, config: ResidencyConfig) -> ResidencyRule:
        return cls(
            name=name,
            regions=frozenset(config.regions) if config.regions is not None else None,
            provider_types=frozenset(config.provider_types) if config.provider_types is not None else None,
        )

    @property
    def label(self) -> str:
        """What the rule is, for messages: ``tenant 'acme' residency: regions [eu-west-1]``."""
        owner = "global" if self.name == DEFAULT_RULE else f"tenant '{self.name}'"
        parts = []
        if self.regions is not None:
            parts.append(f"regions [{', '.join(sorted(self.regions))}]")
        if self.provider_types is not None:
            parts.append(f"provider types [{', '.join(sorted(self.provider_types))}]")
        return f"{owner} residency: {', '.join(parts) or 'any deployment'}"

    def exclusion(self, config: DeploymentConfig) -> str | None:
        """Why a deployment is not allowed (``region us-east-1``), or None when it is."""
        if self.regions is not None and config.region not in self.regions:
            return f"region {config.region}" if config.region is not None else "no region"
        if self.provider_types is not None and config.provider_type not in self.provider_types:
            return f"provider type {config.provider_type}"
        return None

    def allows(self, deployment: Deployment) -> bool:
        return self.exclusion(deployment.config) is None

    def refuse(self, model: str, routes: Sequence[ModelRoute]) -> PermissionDenied:
        deployments = [d for route in routes for d in route.deployments]
        excluded = "; ".join(f"{d.name}: {self.exclusion(d.config) or 'allowed'}" for d in deployments)
        fallbacks = [route.alias for route in routes if route.alias != model]
        target = f"model '{model}'" + (f" or its fallbacks {', '.join(fallbacks)}" if fallbacks else "")
        return PermissionDenied(
            f"{self.label} — no deployment of {target} is allowed ({excluded}).",
            code="residency_denied",
            param="model",
        )


class ResidencyPolicy:
    """The admission policy: see the module docstring."""

    name = "residency"

    def __init__(
        self,
        routes: Mapping[str, ModelRoute],
        *,
        default: ResidencyRule | None = None,
        tenants: Mapping[str, ResidencyRule] | None = None,
    ) -> None:
        self._routes = routes
        self._default = default
        self._tenants = dict(tenants or {})

    @classmethod
    def from_config(cls, config: Config, routes: Mapping[str, ModelRoute]) -> ResidencyPolicy | None:
        """The policy, or None when no residency rule is configured at all."""
        tenants = {
            tenant: ResidencyRule.from_config(tenant, section.residency)
            for tenant, section in config.tenants.items()
            if section.residency is not None
        }
        default = None
        if config.residency is not None:
            default = ResidencyRule.from_config(DEFAULT_RULE, config.residency)
        if default is None and not tenants:
            return None
        return cls(routes, default=default, tenants=tenants)

    def rule_for(self, tenant: str | None) -> ResidencyRule | None:
        """The rule a tenant's requests follow: its own, else the global one, else none."""
        if tenant is not None:
            rule = self._tenants.get(tenant)
            if rule is not None:
                return rule
        return self._default

    def chain(self, model: str) -> list[ModelRoute]:
        """The requested alias and its fallbacks (unknown aliases are left to the router's 404)."""
        route = self._routes.get(model)
        if route is None:
            return []
        fallbacks = (self._routes.get(alias) for alias in route.config.fallbacks)
        return [route, *(r for r in fallbacks if r is not None)]

    async def admit(self, call: Call[Any]) -> Hold | None:
        rule = self.rule_for(call.principal.tenant)
        if rule is None:
            return None
        ctx = call.ctx
        ctx.allow = rule
        model = call.op.model
        chain = self.chain(model)
        if chain and not any(rule.allows(d) for route in chain for d in route.deployments):
            ctx.decisions.append(f"residency:denied {rule.name} {model}")
            raise rule.refuse(model, chain)
        ctx.decisions.append(f"residency:{rule.name}")
        return None
