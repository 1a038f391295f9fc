"""Authentication: turn a presented credential into a :class:`~interlace.core.principal.Principal`.

Credentials, in the order they are tried:

- the master key (``auth.master_key``): the operator, ``Principal(kind="master", tenant=None)``;
- the admin key (``auth.admin_key``), on the ``/admin/`` API only: the operator, ``id="admin"``;
- a virtual API key (``ik_…``, :mod:`interlace.security.keys`): verified against an in-memory cache,
  never a database round trip on the hot path;
- a bearer JWT (three dot-separated parts) from an OIDC issuer (``auth.oidc``,
  :mod:`interlace.security.oidc`), through a :class:`TokenVerifier`.

A rejection is an :class:`~interlace.core.errors.AuthenticationError` whose code says why —
``missing_api_key``, ``malformed_api_key``, ``unknown_api_key``, ``revoked_api_key``,
``expired_api_key``, ``invalid_api_key`` (a wrong secret or key) — and whose message names the key's
public id at most, never what was presented.
"""

from __future__ import annotations

import hmac
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Final, Protocol

from interlace.core.errors import AuthenticationError
from interlace.core.principal import Principal
from interlace.security.keys.model import KEY_PREFIX, parse_key

if TYPE_CHECKING:
    from collections.abc import Callable

    from interlace.security.keys.cache import KeyCache

__all__ = ["ADMIN", "MASTER", "Authenticator", "TokenVerifier"]

MASTER: Final = Principal(kind="master", id="master", tenant=None)
ADMIN: Final = Principal(kind="master", id="admin", tenant=None)
"""The admin key's caller: the operator, on the ``/admin/`` API only."""


class TokenVerifier(Protocol):
    """Verifies a bearer token (a JWT) and maps its claims to a principal."""

    async def verify(self, token: str) -> Principal:
        """The token's principal; raises an :class:`~interlace.core.errors.AuthenticationError` (why)."""
        ...


class Authenticator:
    """Every credential source of one gateway; built once by the runtime."""

    def __init__(
        self,
        *,
        master_key: str | None = None,
        admin_key: str | None = None,
        keys: KeyCache | None = None,
        tokens: TokenVerifier | None = None,
        now: Callable[[], datetime] | None = None,
    ) -> None:
        self._master = master_key.encode() if master_key else None
        self._admin = admin_key.encode() if admin_key else None
        self.keys = keys
        self.tokens = tokens
        self._now = now or (lambda: datetime.now(UTC))

    @property
    def enabled(self) -> bool:
        """Some credential source is configured: callers must present a credential."""
        return any(s is not None for s in (self._master, self._admin, self.keys, self.tokens))

    async def authenticate(self, credential: str | None, *, admin: bool = False) -> Principal:
        """The caller presenting ``credential`` (``admin``: on the admin API); raises AuthenticationError."""
        if not credential:
            raise AuthenticationError(
                "Missing API key: send 'Authorization: Bearer <key>' (or 'x-api-key: <key>').",
                code="missing_api_key",
            )
        presented = credential.encode()
        if self._master is not None and hmac.compare_digest(presented, self._master):
            return MASTER
        if self._admin is not None and hmac.compare_digest(presented, self._admin):
            if admin:
                return ADMIN
            raise AuthenticationError(
                "The admin key opens only the /admin/ API: call the model API with the master key "
                "or a virtual API key.",
                code="invalid_api_key",
            )
        if credential.startswith(KEY_PREFIX) and self.keys is not None:
            return await self._virtual_key(self.keys, credential)
        if self.tokens is not None and credential.count(".") == 2:  # noqa: PLR2004 - a JWT's three parts
            return await self.tokens.verify(credential)
        raise AuthenticationError(self._unrecognised(), code="invalid_api_key")

    async def _virtual_key(self, keys: KeyCache, credential: str) -> Principal:
        parsed = parse_key(credential)
        if parsed is None:
            raise AuthenticationError(
                "Malformed API key: a virtual key reads 'ik_<16 hex digits>_<secret>' — check it was "
                "copied whole.",
                code="malformed_api_key",
            )
        key_id, secret = parsed
        cached = await keys.find(key_id)
        if cached is None:
            raise AuthenticationError(f"Unknown API key '{key_id}'.", code="unknown_api_key")
        key, now = cached.key, self._now()
        status = key.status(now)
        if status == "revoked":
            raise AuthenticationError(f"API key '{key_id}' was revoked.", code="revoked_api_key")
        if status == "expired":
            raise AuthenticationError(f"API key '{key_id}' has expired.", code="expired_api_key")
        if not key.matches(secret, now):
            raise AuthenticationError(
                f"Invalid secret for API key '{key_id}' (rotated? use the new key).", code="invalid_api_key"
            )
        return cached.principal

    def _unrecognised(self) -> str:
        accepted = []
        if self.keys is not None:
            accepted.append("a virtual API key (ik_…)")
        if self._master is not None:
            accepted.append("the master key")
        if self.tokens is not None:
            accepted.append("a bearer JWT from a trusted issuer")
        return f"Invalid API key: expected {' or '.join(accepted) or 'a configured credential'}."
