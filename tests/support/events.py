"""Request records for the event-log tests, and a state database that can be taken down on purpose."""

from __future__ import annotations

import itertools
import sqlite3
from datetime import UTC, datetime

from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine

from interlace.observability.record import RequestRecord, Usage
from interlace.store.database import Database
from interlace.store.driver_pool import DriverPool

_IDS = itertools.count(1)


def at(day: str, hour: int = 12) -> float:
    """``time.time()`` of ``hour`` o'clock UTC on ``day`` (YYYY-MM-DD)."""
    return datetime.fromisoformat(day).replace(hour=hour, tzinfo=UTC).timestamp()


def record(
    *,
    day: str | None = None,
    started_at: float | None = None,
    tenant: str | None = None,
    api_key_id: str | None = "key-1",
    model: str = "gpt",
    status: int = 200,
    prompt: int = 0,
    completion: int = 0,
    cached: int = 0,
    reasoning: int = 0,
    estimated: bool = False,
    partial: bool = False,
    shadow: bool = False,
    cost_usd: float = 0.0,
    request_id: str | None = None,
) -> RequestRecord:
    when = started_at if started_at is not None else at(day or "2026-12-01")
    return RequestRecord(
        request_id=request_id or f"req-{next(_IDS)}",
        operation="chat",
        endpoint="/v1/chat/completions",
        started_at=when,
        duration_s=0.25,
        status=status,
        tenant=tenant,
        api_key_id=api_key_id,
        requested_model=model,
        served_model=model,
        stream=partial,
        partial=partial,
        usage=Usage(
            prompt_tokens=prompt,
            completion_tokens=completion,
            cached_tokens=cached,
            reasoning_tokens=reasoning,
            estimated=estimated,
        ),
        cost_usd=cost_usd,
        shadow=shadow,
    )


class FlakyDatabase(Database):
    """A real database whose engine and driver pool raise a connection error while ``down`` is true."""

    down = False

    @property
    def engine(self) -> AsyncEngine:
        if self.down:
            raise OperationalError("connect", {}, ConnectionRefusedError("the test took the database down"))
        return super().engine

    @property
    def pool(self) -> DriverPool:
        if self.down:
            raise sqlite3.OperationalError("the test took the database down")  # as a driver raises it
        return super().pool
