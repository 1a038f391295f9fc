"""``auth:``: who may call the gateway, and who may manage its virtual API keys.

Authentication is **enabled** when any credential source is configured: ``master_key``, ``admin_key``,
``virtual_keys: true`` or ``oidc``. Then every API call needs a credential (``/healthz``, ``/readyz``,
``/openapi.json`` and ``/metrics`` stay open) and virtual API keys (``interlace keys create``) are
accepted. Without any of them the gateway is open, as on a developer's machine, and ``interlace serve``
refuses to bind a non-loopback address.

Example::

    auth:
      master_key: ${INTERLACE_MASTER_KEY}   # the operator: every endpoint, every tenant's data
      admin_key: ${INTERLACE_ADMIN_KEY}     # the /admin/ API only (key management)
      key_cache: {refresh_interval: 5}
"""

from __future__ import annotations

from pydantic import Field, SecretStr

from interlace.config._base import Strict
from interlace.config.oidc import OidcConfig

__all__ = ["AuthConfig", "KeyCacheConfig"]


class KeyCacheConfig(Strict):
    """The in-memory copy of the ``api_keys`` table every credential is verified against."""

    refresh_interval: float = Field(
        5.0,
        gt=0,
        le=3600,
        description="Seconds between incremental reloads: a key revoked on another instance stops "
        "working here within this interval.",
    )
    lookups_per_second: float = Field(
        10.0,
        gt=0,
        description="On-demand database lookups of key ids not (yet) in the cache, e.g. a key just "
        "created on another instance; beyond this rate an unknown key is rejected without one.",
    )


class AuthConfig(Strict):
    master_key: SecretStr | None = Field(
        None, description="A bearer key that may call every endpoint; a ${ENV_VAR} reference."
    )
    admin_key: SecretStr | None = Field(
        None,
        description="A bearer key for the /admin/ API only (create, rotate, revoke virtual keys); "
        "a ${ENV_VAR} reference. The master key opens the admin API too.",
    )
    virtual_keys: bool = Field(
        default=False,
        description="Require a credential even without master_key/admin_key: callers use virtual API "
        "keys made with `interlace keys create`. (Keys are accepted whenever auth is enabled.)",
    )
    key_cache: KeyCacheConfig = Field(default_factory=KeyCacheConfig)
    oidc: OidcConfig | None = Field(
        None, description="Accept bearer JWTs from these OpenID Connect issuers (interlace.config.oidc)."
    )

    @property
    def enabled(self) -> bool:
        """Some credential source is configured: every API call must authenticate."""
        return (
            self.master_key is not None
            or self.admin_key is not None
            or self.virtual_keys
            or self.oidc is not None
        )
