"""The audit writer: every finished request chained into ``audit_log``, off the request path, never lost.

:class:`AuditWriter` is a :class:`~interlace.observability.observer.RequestObserver`: :meth:`observe`
only queues the record. A background task turns queued records into entry bodies
(:func:`~interlace.security.audit.entry.audit_body`) and appends them in batches — as soon as
``batch_size`` wait, else every ``flush_interval`` seconds — each batch chained after the head in one
transaction (:func:`~interlace.security.audit.store.append_chain`).

Nothing is lost, and the chain keeps the order entries were taken in:

* when the database fails, a batch is retried with backoff for up to ``retry_for`` seconds, then
  written to the spool (:class:`~interlace.observability.spool.Spool` with ``fsync``: every write is
  on disk before the writer goes on); from then on every batch goes to the spool behind it, and the
  database is probed with a growing delay (up to 5 s);
* once the database answers, the spool is appended first, file by file in the order written, then
  the batches after it; a body already appended (a file replayed twice, a batch half-committed) is
  skipped by its ``entry_id``;
* a full queue spools everything queued (oldest first) rather than drop a record;
* :meth:`start` appends any spool a stopped gateway left behind (other gateways' files are taken
  only when no live process holds them); :meth:`aclose` writes or spools everything queued, and
  records observed after it go straight to the spool.

``observe`` must be called on the event loop's thread, and the record must not change afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from interlace.core.turns import in_turns
from interlace.observability.spool import Spool, read_events
from interlace.security.audit.entry import ContentMode, audit_body
from interlace.security.audit.store import append_chain

if TYPE_CHECKING:
    from collections.abc import Callable

    from interlace.observability.record import RequestRecord
    from interlace.store.database import Database

__all__ = ["AuditStats", "AuditWriter", "default_audit_spool_dir"]

log = logging.getLogger("interlace.security.audit")

_FIRST_DELAY = 0.05
_MAX_RETRY_DELAY = 1.0
_MAX_PROBE_DELAY = 5.0


def default_audit_spool_dir(state_dir: str | Path) -> Path:
    """Where the audit log of a gateway whose state lives in ``state_dir`` spools."""
    return Path(state_dir) / "audit-spool"


@dataclass(slots=True)
class AuditStats:
    """Counters since the writer was created."""

    observed: int = 0
    appended: int = 0
    """Entries chained into the database (replayed spool included)."""
    duplicates: int = 0
    """Bodies the database already had (a spool replayed twice)."""
    batches: int = 0
    spooled: int = 0
    """Entries written to the spool."""
    recovered: int = 0
    """Spooled entries read back and appended."""
    failures: int = 0
    """Batches the database did not take in time."""


class AuditWriter:
    """Chains every observed record into the audit log, in the background (see the module's notes)."""

    def __init__(
        self,
        database: Database,
        *,
        spool_dir: Path | str,
        key: bytes | None = None,
        content: ContentMode = "hash",
        max_queue: int = 10_000,
        batch_size: int = 5_000,
        flush_interval: float = 0.2,
        retry_for: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._database = database
        self._spool = Spool(Path(spool_dir), fsync=True)
        self._key = key
        self._content: ContentMode = content
        self._max_queue = max_queue
        self._batch_size = batch_size
        self._flush_interval = flush_interval
        self._retry_for = retry_for
        self._clock = clock
        self._queue: deque[RequestRecord] = deque()
        self._inflight: list[dict[str, Any]] = []
        self._wake = asyncio.Event()
        self._writing = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self._behind = False
        """Entries of ours wait in the spool: everything later must go after them."""
        self._healthy = True
        self._next_probe = 0.0
        self._probe_delay = _FIRST_DELAY
        self.stats = AuditStats()

    @property
    def queued(self) -> int:
        return len(self._queue)

    @property
    def behind(self) -> bool:
        """Whether entries wait in the spool for the database."""
        return self._behind

    def observe(self, record: RequestRecord) -> None:
        """Queue the record; never waits, never raises (a full queue is spooled, in order)."""
        try:
            self.stats.observed += 1
            if self._closed or len(self._queue) >= self._max_queue:
                self._queue.append(record)
                self._spill_all()
                if self._closed:  # nobody will close the file later: leave it to a replayer now
                    self._spool.close()
                return
            self._queue.append(record)
            if len(self._queue) >= self._batch_size:
                self._wake.set()
        except Exception:
            log.exception("audit: could not take request %s", getattr(record, "request_id", "?"))

    async def start(self) -> None:
        """Append any spool left behind, then start writing in the background."""
        if self._task is not None:
            return
        self._closed = False
        await self.recover_spool()
        self._task = asyncio.create_task(self._run(), name="interlace-audit-writer")

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
        try:
            if self._behind and not self._queue and self._clock() >= self._next_probe:
                await self.recover_spool()  # the database may be back though nothing new came
            await self._drain()
        except Exception:
            log.exception("audit: the writer failed; spooling what is queued")
            try:
                self._spill_all()
            except Exception:
                log.exception("audit: cannot spool either; %d records wait in memory", self.queued)

    def _body(self, record: RequestRecord) -> dict[str, Any]:
        return audit_body(record, self._content)

    def _spill_all(self) -> None:
        """Spool the batch being written and everything queued, in order."""
        bodies = self._inflight + [self._body(record) for record in self._queue]
        self._inflight = []
        self._queue.clear()
        if bodies:
            self.stats.spooled += self._spool.append(bodies)
            self._behind = True

    async def _drain(self) -> None:
        async with self._writing:  # the background task and flush() never write the same batch
            while self._queue:
                count = min(self._batch_size, len(self._queue))
                bodies: list[dict[str, Any]] = []
                self._inflight = bodies
                async for _ in in_turns(range(count)):  # a record leaves the queue once it is a body
                    if self._inflight is not bodies or not self._queue:
                        break  # a full queue spooled everything meanwhile, these bodies included
                    bodies.append(self._body(self._queue[0]))
                    self._queue.popleft()
                if self._inflight is bodies and bodies:
                    await self._deliver(bodies)
                self._inflight = []

    async def _deliver(self, bodies: list[dict[str, Any]]) -> None:
        """Append a batch (after the spool, if entries wait there), retrying while the database is up."""
        probe = self._clock() >= self._next_probe
        if self._behind and not (probe and await self.recover_spool()):
            self._to_spool(bodies)
            return
        if not self._healthy and not probe:
            self._to_spool(bodies)
            return
        deadline = self._clock() + (self._retry_for if self._healthy else 0.0)
        delay = _FIRST_DELAY
        while True:
            try:
                written = await append_chain(self._database, bodies, self._key)
            except Exception as exc:
                if self._clock() + delay > deadline:
                    self._mark_down(exc)
                    self._to_spool(bodies)
                    return
                await asyncio.sleep(delay)
                delay = min(delay * 2, _MAX_RETRY_DELAY)
                continue
            self._count(len(bodies), written)
            self._mark_up()
            return

    def _to_spool(self, bodies: list[dict[str, Any]]) -> None:
        self.stats.spooled += self._spool.append(bodies)
        self._behind = True

    def _mark_down(self, exc: Exception) -> None:
        self.stats.failures += 1
        if self._healthy:
            log.warning("audit: cannot write to the database (%s); spooling entries", exc)
        self._healthy = False
        self._next_probe = self._clock() + self._probe_delay
        self._probe_delay = min(self._probe_delay * 2, _MAX_PROBE_DELAY)

    def _mark_up(self) -> None:
        if not self._healthy:
            log.warning("audit: the database is back")
        self._healthy = True
        self._probe_delay = _FIRST_DELAY
        self._next_probe = 0.0

    def _count(self, bodies: int, written: int) -> None:
        self.stats.batches += 1
        self.stats.appended += written
        self.stats.duplicates += bodies - written

    async def recover_spool(self) -> bool:
        """Append every unclaimed spool file, oldest first; ``True`` when none is left behind.

        A file is deleted once all its entries are in; on a failure it is kept for the next try (its
        entries already appended are skipped then) and the writer stays behind it.
        """
        self._behind = False
        files = self._spool.claim()
        replayed = bool(files)
        try:
            while files:
                bodies = await asyncio.to_thread(read_events, files[0])
                for body in bodies:
                    if not isinstance(body.get("entry_id"), str):
                        body["entry_id"] = uuid.uuid4().hex
                for first in range(0, len(bodies), self._batch_size):
                    chunk = bodies[first : first + self._batch_size]
                    self._count(len(chunk), await append_chain(self._database, chunk, self._key))
                files.pop(0).done()
                self.stats.recovered += len(bodies)
        except Exception as exc:
            log.warning("audit: cannot append %s yet (%s); keeping it", files[0].path, exc)
            self._mark_down(exc)
            self._behind = True
            return False
        finally:
            for claimed in files:
                claimed.release()
        if replayed:
            self._mark_up()
        return not self._behind
