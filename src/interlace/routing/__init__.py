"""Routing: model aliases to deployments, strategies and failover."""

from interlace.routing.router import Deployment, ModelRoute, Router

__all__ = ["Deployment", "ModelRoute", "Router"]
