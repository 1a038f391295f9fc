"""Pure ASGI middleware of the gateway, one concern per module."""

from interlace.gateway.middleware.auth import MasterKeyAuth

__all__ = ["MasterKeyAuth"]
