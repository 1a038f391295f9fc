"""The writer of shadow comparisons: one row of ``shadow_records`` per mirrored request.

:class:`ShadowRecorder` is the :class:`~interlace.routing.shadow.ShadowSink` the runtime hands the
mirrors (it runs in a mirror's background task, never on a request path). Every runtime makes one,
mirrors or not, so it imports the table and SQLAlchemy only with its first comparison: a gateway
without mirrors never loads them (:mod:`interlace.store.shadow` has the table and the report).
"""

from __future__ import annotations

from datetime import UTC
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from interlace.routing.shadow import ShadowRecord, SideRecord
    from interlace.store.database import Database

__all__ = ["ShadowRecorder"]


def _side_values(side: str, record: SideRecord) -> dict[str, Any]:
    return {
        f"{side}_deployment": record.deployment,
        f"{side}_text": record.text,
        f"{side}_finish": record.finish,
        f"{side}_latency_ms": record.latency_ms,
        f"{side}_prompt_tokens": record.prompt_tokens,
        f"{side}_completion_tokens": record.completion_tokens,
        f"{side}_error": record.error,
        f"{side}_cost_usd": record.cost_usd,
    }


class ShadowRecorder:
    """Writes comparisons to the state database (the database must have been started)."""

    def __init__(self, database: Database) -> None:
        self._database = database

    async def record(self, record: ShadowRecord) -> None:
        values = {
            "id": record.id,
            "request_id": record.request_id[:128],
            "alias": record.alias,
            "candidate": record.candidate,
            "created_at": record.created_at.astimezone(UTC),
            "stream": record.stream,
            "exact_match": record.exact_match,
            "similarity": record.similarity,
            **_side_values("primary", record.primary),
            **_side_values("shadow", record.shadow),
        }
        from sqlalchemy import insert  # noqa: PLC0415 - SQLAlchemy with the first comparison

        from interlace.store.shadow import shadow_records  # noqa: PLC0415

        async with self._database.begin() as connection:
            await connection.execute(insert(shadow_records).values(**values))
