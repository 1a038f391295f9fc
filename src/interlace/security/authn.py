"""Authentication: turn a presented credential into a :class:`~interlace.core.principal.Principal`.

Credentials, in the order they are tried:

- the master key (``auth.master_key``): the operator;
- a virtual API key (``ik-…``, :mod:`interlace.security.keys`): verified against an in-memory cache,
  never a database round trip on the hot path;
- a bearer JWT from an OIDC issuer (``auth.oidc``, :mod:`interlace.security.oidc`), through a
  :class:`TokenVerifier`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from interlace.core.principal import Principal

__all__ = ["TokenVerifier"]


class TokenVerifier(Protocol):
    """Verifies a bearer token (a JWT) and maps its claims to a principal."""

    async def verify(self, token: str) -> Principal:
        """The token's principal; raises an :class:`~interlace.core.errors.AuthenticationError` (why)."""
        ...
