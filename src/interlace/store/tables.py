"""Table definitions. Each aggregate gets its own table group; migrations live in ``migrations/``."""

from __future__ import annotations

from sqlalchemy import Column, DateTime, Integer, MetaData, String, Table

__all__ = ["gateway_instances", "metadata"]

metadata = MetaData()

#: One row per gateway process start: who served, from which config, since when.
gateway_instances = Table(
    "gateway_instances",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("host", String(255), nullable=False),
    Column("port", Integer, nullable=False),
    Column("version", String(32), nullable=False),
    Column("config_source", String(1024), nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=False),
)
