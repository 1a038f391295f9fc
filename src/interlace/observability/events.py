"""The event log: every finished request appended, off the hot path, to ``request_events``.

:class:`EventLog` is a :class:`~interlace.observability.observer.RequestObserver`. Its
:meth:`~EventLog.observe` only appends the record to a bounded in-memory queue (a few hundred
nanoseconds; it never waits and never raises). A background task, started by :meth:`~EventLog.start`,
writes the queue in batches — as soon as ``batch_size`` records are waiting, else every
``flush_interval`` seconds — each batch in one transaction that appends the events and adds them to the
``usage_daily`` read model (see :mod:`interlace.store.event_store`).

Nothing is lost:

* when the queue is full, ``observe`` writes the record to the spool (an append-only JSON-lines file
  under the state directory, see :mod:`interlace.observability.spool`) and counts it in ``stats.spilled``;
* when the database fails, a batch is retried with exponential backoff for up to ``retry_for`` seconds,
  then spooled (``stats.spooled``); while the database stays down, batches are spooled at once and the
  database is probed with a growing delay (up to 5 s);
* the spool is replayed into the database on :meth:`~EventLog.start`, as soon as a write succeeds
  again, and once the queue has drained after it overflowed (``stats.recovered``); the log skips
  events it already has (by event id), so replays never count twice;
* :meth:`~EventLog.aclose` writes (or spools) everything queued before it returns, and records
  observed after it go straight to the spool.

``observe`` must be called on the event loop's thread (the gateway's), and the record must not be
changed afterwards. The sequence id of ``request_events`` is the order events were appended, which is
not quite the order requests finished when some went through the spool.

Reading and rebuilding the read model: :func:`usage` and :func:`replay` (re-exported from the store).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from dataclasses import dataclass
from operator import attrgetter
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from interlace.core.turns import in_turns
from interlace.observability.observer import RequestObserver
from interlace.observability.record import RequestRecord
from interlace.observability.spool import Spool, read_events
from interlace.store.event_store import (
    GROUP_BY,
    EventRow,
    GroupBy,
    ReplayResult,
    UsageRow,
    append,
    event_row,
    record_row,
    replay,
    usage,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from interlace.store.database import Database

__all__ = [
    "CONTENT_FIELDS",
    "GROUP_BY",
    "EventLog",
    "EventLogStats",
    "GroupBy",
    "ReplayResult",
    "UsageRow",
    "default_spool_dir",
    "event_json",
    "event_row_of",
    "replay",
    "to_event",
    "usage",
]

log = logging.getLogger("interlace.observability.events")

_FIRST_DELAY = 0.05
_MAX_RETRY_DELAY = 1.0
_MAX_PROBE_DELAY = 5.0


def default_spool_dir(state_dir: str | Path) -> Path:
    """Where an event log whose state lives in ``state_dir`` spools: ``<state_dir>/spool``."""
    return Path(state_dir) / "spool"


CONTENT_FIELDS = ("prompt", "completion")
"""Record fields the log never stores: captured request and answer content (``include_content``).

The log is append-only and kept for billing, so it must not hold what a user wrote or was answered.
"""


_CONTENT_NULL = b',"prompt":null,"completion":null'
"""The content fields of a record captured without content, as orjson writes them."""
_EVENT_FIELDS = tuple(name for name in RequestRecord.__dataclass_fields__ if name not in CONTENT_FIELDS)
_event_values = attrgetter(*_EVENT_FIELDS)
_JSON_OPTIONS = orjson.OPT_NON_STR_KEYS


def event_json(record: RequestRecord) -> bytes:
    """The record as the JSON the log stores, without its content (NaN, infinities → ``null``)."""
    if record.prompt is None and record.completion is None:
        data = orjson.dumps(record, default=repr, option=_JSON_OPTIONS)
        # the fields after them are strings (or null), so the last match is the record's own pair
        cut = data.rfind(_CONTENT_NULL)
        if cut >= 0:
            return data[:cut] + data[cut + len(_CONTENT_NULL) :]
    event = dict(zip(_EVENT_FIELDS, _event_values(record), strict=True))
    return orjson.dumps(event, default=repr, option=_JSON_OPTIONS)


def to_event(record: RequestRecord) -> dict[str, Any]:
    """The record as the JSON object the log stores, without its content (NaN, infinities → ``null``)."""
    event: dict[str, Any] = orjson.loads(event_json(record))
    return event


def event_row_of(record: RequestRecord) -> EventRow:
    """The record as a row of the log: ``event_row(to_event(record))``, without reading the JSON back."""
    text = event_json(record).decode()
    return record_row(record, text) or event_row(orjson.loads(text), text)


@dataclass(slots=True)
class EventLogStats:
    """Counters since the log was created."""

    observed: int = 0
    """Records taken by ``observe``."""
    appended: int = 0
    """Events written to the database (replayed spool included)."""
    duplicates: int = 0
    """Events the database already had (a spool replayed again)."""
    batches: int = 0
    """Transactions committed."""
    spilled: int = 0
    """Records ``observe`` spooled because the queue was full (or the log closed)."""
    spooled: int = 0
    """Events of batches the database did not take in time."""
    recovered: int = 0
    """Spooled events replayed into the database."""
    failures: int = 0
    """Batches given up on (then spooled)."""


class EventLog(RequestObserver):
    """Appends every observed record to the event log, in the background (see the module's notes)."""

    def __init__(
        self,
        database: Database,
        *,
        spool_dir: Path | str,
        max_queue: int = 10_000,
        batch_size: int = 5_000,
        flush_interval: float = 0.2,
        retry_for: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._database = database
        self._spool = Spool(Path(spool_dir))
        self._max_queue = max_queue
        self._batch_size = batch_size
        self._flush_interval = flush_interval
        self._retry_for = retry_for
        self._clock = clock
        self._queue: deque[RequestRecord] = deque()
        self._inflight: list[EventRow] = []
        self._wake = asyncio.Event()
        self._writing = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self._overflowed = False
        """Records went to the spool because the queue was full; replayed once it has drained."""
        self._healthy = True
        self._next_probe = 0.0
        self._probe_delay = _FIRST_DELAY
        self.stats = EventLogStats()

    @property
    def queued(self) -> int:
        """Records waiting to be written."""
        return len(self._queue)

    def observe(self, record: RequestRecord) -> None:
        """Queue the record; never waits, never raises (a full queue spills to the spool)."""
        try:
            self.stats.observed += 1
            if self._closed or len(self._queue) >= self._max_queue:
                self._spool.append_encoded([event_json(record)])
                self.stats.spilled += 1
                self._overflowed = True
                if self._closed:  # nobody will close the file later: leave it to a replayer now
                    self._spool.close()
                return
            self._queue.append(record)
            if len(self._queue) >= self._batch_size:
                self._wake.set()
        except Exception:
            log.exception("event log: could not take request %s", getattr(record, "request_id", "?"))

    async def start(self) -> None:
        """Replay any spool left behind, then start writing in the background."""
        if self._task is not None:
            return
        self._closed = False
        await self.recover_spool()
        self._task = asyncio.create_task(self._run(), name="interlace-event-log")

    async def flush(self) -> None:
        """Write everything queued now (a test and shutdown helper; the background task does it too)."""
        await self._drain()

    async def aclose(self) -> None:
        """Write (or spool) everything queued, then stop; later records go straight to the spool."""
        self._closed = True
        self._wake.set()
        task, self._task = self._task, None
        try:
            if task is not None:
                await task
            else:
                await self._drain()
        finally:
            self._spill_all()
            self._spool.close()

    async def _run(self) -> None:
        try:
            while not self._closed:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self._flush_interval):
                        await self._wake.wait()
                self._wake.clear()
                await self._drain_or_spill()
            await self._drain_or_spill()
        except asyncio.CancelledError:
            self._spill_all()
            raise

    async def _drain_or_spill(self) -> None:
        """Drain; on anything unexpected, spool what is pending and keep the writer alive."""
        try:
            await self._drain()
            if self._overflowed and self._healthy and not self._queue and not self._closed:
                self._overflowed = False  # the backlog is gone: what overflowed goes in now, not at restart
                await self.recover_spool()
        except Exception:
            log.exception("event log: the writer failed; spooling what is queued")
            try:
                self._spill_all()
            except Exception:
                log.exception("event log: cannot spool either; %d records wait in memory", self.queued)

    def _spill_all(self) -> None:
        """Spool the batch being written and everything queued (cancellation, a crash, closing)."""
        lines = [row.record.encode() for row in self._inflight]
        lines += [event_json(record) for record in self._queue]
        self._inflight = []
        self._queue.clear()
        if lines:
            self.stats.spooled += self._spool.append_encoded(lines)

    async def _drain(self) -> None:
        async with self._writing:  # the background task and flush() never write the same batch
            while self._queue:
                count = min(self._batch_size, len(self._queue))
                rows: list[EventRow] = []
                self._inflight = rows
                async for _ in in_turns(range(count)):  # a record leaves the queue once it is a row
                    rows.append(event_row_of(self._queue[0]))
                    self._queue.popleft()
                await self._deliver(rows)
                self._inflight = []

    async def _deliver(self, events: list[EventRow]) -> None:
        """Write a batch, retrying with backoff while the database is thought up; else spool it."""
        if self._healthy or self._clock() >= self._next_probe:
            deadline = self._clock() + (self._retry_for if self._healthy else 0.0)
            delay = _FIRST_DELAY
            while True:
                try:
                    written = await append(self._database, events)
                except Exception as exc:
                    if self._clock() + delay > deadline:
                        self._mark_down(exc)
                        break
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, _MAX_RETRY_DELAY)
                    continue
                self._count(len(events), written)
                if not self._healthy:
                    self._healthy = True
                    self._probe_delay = _FIRST_DELAY
                    log.warning("event log: the database is back; replaying the spool")
                    await self.recover_spool()
                return
        self.stats.spooled += self._spool.append_encoded(event.record.encode() for event in events)

    def _mark_down(self, exc: Exception) -> None:
        self.stats.failures += 1
        if self._healthy:
            log.warning("event log: cannot write to the database (%s); spooling events", exc)
        self._healthy = False
        self._next_probe = self._clock() + self._probe_delay
        self._probe_delay = min(self._probe_delay * 2, _MAX_PROBE_DELAY)

    def _count(self, events: int, written: int) -> None:
        self.stats.batches += 1
        self.stats.appended += written
        self.stats.duplicates += events - written

    async def recover_spool(self) -> int:
        """Replay every unclaimed spool file into the database; returns the events read from them.

        A file is deleted once all its events are in; one the database refuses is kept for next time.
        """
        recovered = 0
        files = self._spool.claim()
        try:
            while files:
                claimed = files[0]
                events = [event_row(event) for event in await asyncio.to_thread(read_events, claimed)]
                for first in range(0, len(events), self._batch_size):
                    chunk = events[first : first + self._batch_size]
                    self._count(len(chunk), await append(self._database, chunk))
                files.pop(0).done()
                recovered += len(events)
        except Exception as exc:
            log.warning("event log: cannot replay %s yet (%s); keeping it", files[0].path, exc)
            self._healthy = False
        finally:
            for claimed in files:
                claimed.release()
            self.stats.recovered += recovered
        return recovered
