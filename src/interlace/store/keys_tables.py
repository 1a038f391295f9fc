"""The ``api_keys`` table: virtual API keys, stored as the SHA-256 of their secret only.

One row per key id (``ik_…``, public, safe to log). The secret itself is never stored: ``secret_hash``
is its SHA-256; after a rotation with a grace period ``previous_hash`` keeps the old secret working
until ``previous_expires_at``. A revoked key keeps its row (``revoked_at`` set) so its usage and audit
records still name it. ``updated_at`` changes on every write: gateways reload the rows changed since
their last refresh (:mod:`interlace.security.keys.cache`).

Scopes (``models``, ``endpoints``) are JSON lists, ``NULL`` meaning every one; limits are ``NULL`` when
unlimited.
"""

from __future__ import annotations

from sqlalchemy import JSON, BigInteger, Column, DateTime, Float, Index, Integer, String, Table

from interlace.store.tables import metadata

__all__ = ["api_keys"]

#: Virtual API keys, by public id; never deleted (revocation sets ``revoked_at``).
api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("name", String(128), nullable=False),
    Column("tenant", String(128), nullable=False),
    Column("team", String(128), nullable=True),
    Column("subject", String(256), nullable=True),
    Column("secret_hash", String(64), nullable=False),
    Column("previous_hash", String(64), nullable=True),
    Column("previous_expires_at", DateTime(timezone=True), nullable=True),
    Column("models", JSON, nullable=True),
    Column("endpoints", JSON, nullable=True),
    Column("rpm", Integer, nullable=True),
    Column("tpm", BigInteger, nullable=True),
    Column("budget_usd", Float, nullable=True),
    Column("soft_budget_usd", Float, nullable=True),
    Column("budget_period", String(8), nullable=False),
    Column("meta", JSON, nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
    Index("ix_api_keys_updated_at", "updated_at"),
    Index("ix_api_keys_tenant_team", "tenant", "team"),
)
