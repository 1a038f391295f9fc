"""The event log's spool: append-only JSON-lines files that hold events the database could not take yet.

Each process writes its own files, ``events-<instance>-<n>.jsonl``, and holds an exclusive ``flock`` on
the one it has open, so a replayer (this process after a recovery, another gateway on start, or
``interlace events replay``) never takes a file that is still being written. A replayer locks a file
before reading it and deletes it only once every event in it is in the database; replaying twice is
harmless because the log ignores a request id it already has.

Writes are buffered appends to the page cache, flushed to the OS after each call (no ``fsync``): a
crash of the process loses nothing, a crash of the machine may lose the last few. ``Spool(...,
fsync=True)`` (the audit log's) also ``fsync``s each call and the directory a new file is made in.
"""

from __future__ import annotations

import fcntl
import logging
import os
import uuid
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    from collections.abc import Iterable
    from pathlib import Path

__all__ = ["ClaimedSpool", "Spool", "read_events"]

log = logging.getLogger("interlace.observability.events")

_PATTERN = "events-*.jsonl"


class Spool:
    """The spool directory of one event log; the files are created on the first write."""

    def __init__(self, directory: Path, *, fsync: bool = False) -> None:
        self.directory = directory
        self.fsync = fsync
        self._instance = uuid.uuid4().hex[:12]
        self._files = 0
        self._handle: IO[bytes] | None = None

    def append(self, events: Iterable[dict[str, Any]]) -> int:
        """Append events (one JSON object a line) and flush them to the OS; returns how many."""
        return self.append_encoded(orjson.dumps(event) for event in events)

    def append_encoded(self, events: Iterable[bytes]) -> int:
        """Append events already encoded (each one JSON object) and flush them; returns how many."""
        handle = self._handle or self._open()
        count = 0
        for event in events:
            handle.write(event)
            handle.write(b"\n")
            count += 1
        handle.flush()
        if self.fsync:
            os.fsync(handle.fileno())
        return count

    def _open(self) -> IO[bytes]:
        self.directory.mkdir(parents=True, exist_ok=True)
        self._files += 1
        path = self.directory / f"events-{self._instance}-{self._files}.jsonl"
        handle = path.open("ab")
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        if self.fsync:  # the new file's name must survive a crash too
            directory = os.open(self.directory, os.O_RDONLY)
            try:
                os.fsync(directory)
            finally:
                os.close(directory)
        self._handle = handle
        log.warning("spooling to %s until the database takes the records (replayed then)", path)
        return handle

    def close(self) -> None:
        """Close the file being written (which releases its lock): it becomes claimable."""
        if self._handle is not None:
            handle, self._handle = self._handle, None
            handle.flush()
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
            handle.close()

    def claim(self) -> list[ClaimedSpool]:
        """Every spool file no live writer holds, oldest first, each locked for this caller."""
        self.close()
        if not self.directory.is_dir():
            return []
        paths = sorted(self.directory.glob(_PATTERN), key=lambda p: (p.stat().st_mtime_ns, p.name))
        claimed: list[ClaimedSpool] = []
        for path in paths:
            try:
                handle = path.open("rb")
            except FileNotFoundError:  # another replayer finished it meanwhile
                continue
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.close()
                continue
            claimed.append(ClaimedSpool(path, handle))
        return claimed

    @property
    def pending(self) -> bool:
        """Whether any spool file exists (this process's or another's)."""
        return self.directory.is_dir() and any(self.directory.glob(_PATTERN))


@dataclass(slots=True)
class ClaimedSpool:
    """A spool file locked by its replayer: :meth:`done` deletes it, :meth:`release` keeps it."""

    path: Path
    handle: IO[bytes]

    def done(self) -> None:
        if self.path.exists() and _same_file(self.path, self.handle):
            self.path.unlink()
        self.release()

    def release(self) -> None:
        if not self.handle.closed:
            fcntl.flock(self.handle.fileno(), fcntl.LOCK_UN)
            self.handle.close()


def _same_file(path: Path, handle: IO[bytes]) -> bool:
    """Whether ``path`` still names the file ``handle`` has open."""
    named, opened = path.stat(), os.fstat(handle.fileno())
    return (named.st_dev, named.st_ino) == (opened.st_dev, opened.st_ino)


def read_events(claimed: ClaimedSpool) -> list[dict[str, Any]]:
    """The events of a claimed file (blocking: run it in a thread); torn or corrupt lines are skipped."""
    events: list[dict[str, Any]] = []
    claimed.handle.seek(0)
    for number, line in enumerate(claimed.handle, start=1):
        if not line.strip():
            continue
        try:
            event = orjson.loads(line)
        except orjson.JSONDecodeError:
            log.warning("event log: skipping an unreadable line %d of %s", number, claimed.path)
            continue
        if isinstance(event, dict) and isinstance(event.get("request_id"), str):
            events.append(event)
        else:
            log.warning("event log: skipping line %d of %s: not a request record", number, claimed.path)
    return events
