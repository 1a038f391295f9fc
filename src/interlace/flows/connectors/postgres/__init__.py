"""Postgres: change data capture through ``pgoutput`` (source, :mod:`.cdc`), an outbox table (source,
:mod:`.outbox`), a table upserted by key (sink, :mod:`.sink`).

Only the config models are imported here, so that listing connectors (:mod:`interlace.flows.registry`)
does not load psycopg; the registry's factories import the implementations when a flow uses them.
"""

from __future__ import annotations

from interlace.flows.connectors.postgres.config import (
    PostgresCdcConfig,
    PostgresOutboxConfig,
    PostgresSinkConfig,
)

__all__ = ["PostgresCdcConfig", "PostgresOutboxConfig", "PostgresSinkConfig"]
