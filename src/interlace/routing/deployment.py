"""A deployment as the router sees it: the provider, its config, live stats and its bulkhead."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from interlace.resilience.bulkhead import Bulkhead
from interlace.routing.stats import DeploymentStats

if TYPE_CHECKING:
    from collections.abc import Mapping

    from interlace.config.schema import DeploymentConfig, ModelConfig, Price
    from interlace.core.operations import Operation
    from interlace.core.provider import Provider
    from interlace.routing.strategies import RoutingStrategy

__all__ = ["Deployment", "ModelRoute"]


@dataclass(slots=True, eq=False)
class Deployment:
    provider: Provider
    config: DeploymentConfig
    stats: DeploymentStats = field(default_factory=DeploymentStats)
    bulkhead: Bulkhead = field(init=False)

    def __post_init__(self) -> None:
        self.bulkhead = Bulkhead(self.config.max_concurrency, self.config.max_queue)

    @property
    def name(self) -> str:
        return self.provider.name

    @property
    def weight(self) -> float:
        return self.config.weight

    @property
    def tags(self) -> Mapping[str, str]:
        return self.config.tags

    @property
    def price(self) -> Price:
        return self.config.price

    @property
    def supports_prefill(self) -> bool:
        """Whether it can continue an assistant message given as the last turn."""
        declared = self.config.supports_prefill
        return self.provider.kind == "anthropic" if declared is None else declared


@dataclass(slots=True, frozen=True)
class ModelRoute:
    alias: str
    deployments: tuple[Deployment, ...]
    config: ModelConfig
    strategy: RoutingStrategy
    operations: frozenset[Operation]

    @property
    def description(self) -> str | None:
        return self.config.description

    @property
    def ready(self) -> bool:
        return any(d.provider.ready for d in self.deployments)
