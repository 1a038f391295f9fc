"""``residency:`` (global default) and ``tenants.<id>.residency``: where a tenant's data may go.

Every deployment carries two facts (:class:`~interlace.config.schema.DeploymentConfig`):

- ``region``: where the upstream runs (``eu-west-1``); when not set, its ``tags.region`` is used;
  a deployment with neither has no region and is outside every region list;
- ``provider_type``: ``external`` (a third party's hosted API), ``private`` (self-hosted in the
  organisation's network) or ``local`` (in process). When not set, ``local`` and ``fake`` providers
  are ``local`` and every other provider is ``external``: a self-hosted upstream must say ``private``.

A residency rule allows only deployments in one of its ``regions`` and of one of its
``provider_types`` (an omitted list allows every value)::

    residency:                      # every request, unless its tenant has its own rule
      provider_types: [external, private, local]
    tenants:
      acme:
        residency:
          regions: [eu-west-1, eu-central-1]
          provider_types: [private, local]

A tenant's rule replaces the global one (it is not merged with it).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from interlace.config._base import Strict

__all__ = ["ProviderType", "ResidencyConfig"]

ProviderType = Literal["external", "private", "local"]
"""Who runs a deployment: a third party (``external``), the organisation (``private``), the gateway
(``local``)."""


class ResidencyConfig(Strict):
    """Which deployments a request may reach; an omitted list allows every value."""

    regions: list[str] | None = Field(
        None, description="Allowed deployment regions, e.g. [eu-west-1, eu-central-1]. Omit: any region."
    )
    provider_types: list[ProviderType] | None = Field(
        None, description="Allowed provider types (external, private, local). Omit: any type."
    )

    @field_validator("regions", "provider_types")
    @classmethod
    def _not_empty(cls, values: list[str] | None) -> list[str] | None:
        if values is not None and not values:
            msg = "an empty list allows no deployment at all — list what is allowed, or omit the key"
            raise ValueError(msg)
        return values
