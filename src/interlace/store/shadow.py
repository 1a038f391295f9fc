"""Shadow comparisons in the state database: the ``shadow_records`` table, its writer and its report.

:class:`ShadowRecorder` (:mod:`interlace.store.shadow_recorder`) inserts one row per mirrored request
(it is the :class:`~interlace.routing.shadow.ShadowSink` the runtime hands the mirror; it runs in the
mirror's background task, never on a request path). :class:`ShadowReport` aggregates the rows per
``alias → candidate`` pair: requests, agreement, latency percentiles, error rates and cost of each side.

Latency percentiles are of the successful calls of each side (nearest rank); cost is the sum of the
calls whose usage was reported, at the price their deployment had when the call was recorded.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Boolean, Column, DateTime, Float, Index, Integer, String, Table, Text, select

from interlace.store.shadow_recorder import ShadowRecorder
from interlace.store.tables import metadata

if TYPE_CHECKING:
    from collections.abc import Sequence

    from sqlalchemy import Select

    from interlace.store.database import Database

__all__ = ["ShadowRecorder", "ShadowReport", "ShadowSummary", "SideSummary", "percentile", "shadow_records"]

_SIDES = ("primary", "shadow")


def _side_columns(side: str) -> list[Column[Any]]:
    return [
        Column(f"{side}_deployment", String(255), nullable=True),
        Column(f"{side}_text", Text, nullable=False),
        Column(f"{side}_finish", String(32), nullable=True),
        Column(f"{side}_latency_ms", Float, nullable=False),
        Column(f"{side}_prompt_tokens", Integer, nullable=True),
        Column(f"{side}_completion_tokens", Integer, nullable=True),
        Column(f"{side}_error", String(64), nullable=True),
        Column(f"{side}_cost_usd", Float, nullable=True),
    ]


#: One row per mirrored request: the primary's answer and the candidate's, side by side.
shadow_records = Table(
    "shadow_records",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("request_id", String(128), nullable=False),
    Column("alias", String(128), nullable=False),
    Column("candidate", String(128), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("stream", Boolean, nullable=False),
    Column("exact_match", Boolean, nullable=True),
    Column("similarity", Float, nullable=True),
    *_side_columns("primary"),
    *_side_columns("shadow"),
    Index("ix_shadow_records_pair_time", "alias", "candidate", "created_at"),
)


@dataclass(frozen=True, slots=True)
class SideSummary:
    """One side of a pair over the report's window."""

    requests: int
    errors: int
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    cost_usd: float
    priced: int
    """Calls whose cost is known (usage reported); ``cost_usd`` sums those."""

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else 0.0


@dataclass(frozen=True, slots=True)
class ShadowSummary:
    """An ``alias → candidate`` pair over the report's window."""

    alias: str
    candidate: str
    requests: int
    compared: int
    """Requests both sides answered: the ones agreement is computed over."""
    exact_matches: int
    similarity_mean: float | None
    primary: SideSummary
    shadow: SideSummary
    first_at: datetime
    last_at: datetime

    @property
    def agreement(self) -> float | None:
        """Share of compared requests with identical texts after whitespace normalisation."""
        return self.exact_matches / self.compared if self.compared else None


class ShadowReport:
    """Reads the comparisons back, one :class:`ShadowSummary` per pair."""

    def __init__(self, database: Database) -> None:
        self._database = database

    async def rows(
        self, *, model: str | None = None, since: datetime | None = None, limit: int | None = None
    ) -> list[dict[str, Any]]:
        """The stored records, oldest first (``model`` matches the alias or the candidate)."""
        query = _window(select(shadow_records), model, since)
        if limit is not None:
            query = query.limit(limit)
        async with self._database.engine.connect() as connection:
            result = await connection.execute(query)
            return [dict(row._mapping) for row in result]  # noqa: SLF001 - SQLAlchemy's public row mapping

    async def summaries(
        self, *, model: str | None = None, since: datetime | None = None
    ) -> list[ShadowSummary]:
        """Per pair, sorted by alias then candidate; empty when nothing was recorded."""
        wanted = [c for c in shadow_records.c if not c.name.endswith("_text")]
        query = _window(select(*wanted), model, since)
        pairs: dict[tuple[str, str], list[dict[str, Any]]] = {}
        async with self._database.engine.connect() as connection:
            for row in await connection.execute(query):
                values = dict(row._mapping)  # noqa: SLF001 - SQLAlchemy's public row mapping
                pairs.setdefault((values["alias"], values["candidate"]), []).append(values)
        return [_summarise(alias, candidate, rows) for (alias, candidate), rows in sorted(pairs.items())]


def _window(query: Select[Any], model: str | None, since: datetime | None) -> Select[Any]:
    """Records of ``model`` (as the alias or the candidate) since ``since``, oldest first."""
    if model is not None:
        query = query.where((shadow_records.c.alias == model) | (shadow_records.c.candidate == model))
    if since is not None:
        query = query.where(shadow_records.c.created_at >= since.astimezone(UTC))
    return query.order_by(shadow_records.c.created_at)


def _summarise(alias: str, candidate: str, rows: Sequence[dict[str, Any]]) -> ShadowSummary:
    compared = [row for row in rows if row["exact_match"] is not None]
    similarities = [row["similarity"] for row in compared if row["similarity"] is not None]
    primary, shadow = (_side(side, rows) for side in _SIDES)
    return ShadowSummary(
        alias=alias,
        candidate=candidate,
        requests=len(rows),
        compared=len(compared),
        exact_matches=sum(1 for row in compared if row["exact_match"]),
        similarity_mean=sum(similarities) / len(similarities) if similarities else None,
        primary=primary,
        shadow=shadow,
        first_at=rows[0]["created_at"],
        last_at=rows[-1]["created_at"],
    )


def _side(side: str, rows: Sequence[dict[str, Any]]) -> SideSummary:
    latencies = sorted(row[f"{side}_latency_ms"] for row in rows if row[f"{side}_error"] is None)
    costs = [row[f"{side}_cost_usd"] for row in rows if row[f"{side}_cost_usd"] is not None]
    return SideSummary(
        requests=len(rows),
        errors=sum(1 for row in rows if row[f"{side}_error"] is not None),
        latency_p50_ms=percentile(latencies, 50),
        latency_p95_ms=percentile(latencies, 95),
        cost_usd=sum(costs),
        priced=len(costs),
    )


def percentile(ordered: Sequence[float], p: float) -> float | None:
    """The nearest-rank ``p``-th percentile of ascending ``ordered``; ``None`` when empty."""
    if not ordered:
        return None
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]
