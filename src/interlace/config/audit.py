"""``audit:``: the hash-chained audit log of every request (:mod:`interlace.security.audit`).

Example::

    audit:
      content: hash                 # hash (default) | full | none
      hmac_key: ${INTERLACE_AUDIT_KEY}
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr, field_validator

from interlace.config._base import Strict

__all__ = ["AuditConfig"]

_MIN_KEY = 16


class AuditConfig(Strict):
    """What the audit log keeps and how its chain is sealed."""

    enabled: bool = Field(default=True, description="Audit every request (and every 401/403/429).")
    content: Literal["hash", "full", "none"] = Field(
        "hash",
        description="Prompt and completion as SHA-256 hashes (hash), as text (full), or not at all (none).",
    )
    hmac_key: SecretStr | None = Field(
        None,
        description="Chain with HMAC-SHA256 under this key (a ${ENV_VAR} reference), so a database writer "
        "without it cannot re-forge the chain. Without it: plain SHA-256, which detects tampering only "
        "up to a rewritten tail (anchor the head outside the database).",
    )
    spool_dir: str | None = Field(
        None,
        description="Where entries wait (fsync'd JSON lines) while the database is down. "
        "Default: <state.dir>/audit-spool.",
    )

    @field_validator("hmac_key")
    @classmethod
    def _long_enough(cls, key: SecretStr | None) -> SecretStr | None:
        if key is not None and len(key.get_secret_value()) < _MIN_KEY:
            msg = f"hmac_key must be at least {_MIN_KEY} characters (e.g. `openssl rand -hex 32`)"
            raise ValueError(msg)
        return key

    @property
    def key(self) -> bytes | None:
        """The HMAC key as bytes, or ``None`` for plain SHA-256."""
        return self.hmac_key.get_secret_value().encode() if self.hmac_key is not None else None
