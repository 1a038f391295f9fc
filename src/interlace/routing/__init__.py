"""Routing: traffic rules, model aliases to deployments, strategies, retries, fallbacks, recovery."""

from interlace.routing.context import Attempt, DeploymentFilter, RouteContext
from interlace.routing.deployment import Deployment, ModelRoute
from interlace.routing.router import Router

__all__ = ["Attempt", "Deployment", "DeploymentFilter", "ModelRoute", "RouteContext", "Router"]
