"""Pure ASGI middleware of the gateway, one concern per module."""

from interlace.gateway.middleware.auth import Authenticate
from interlace.gateway.middleware.tracing import TracingMiddleware

__all__ = ["Authenticate", "TracingMiddleware"]
