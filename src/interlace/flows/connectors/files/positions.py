"""Where the files source is in each file: the count of leading lines every sink confirmed.

Lines are acknowledged out of order (messages run concurrently); the stored position of a file is
the contiguous prefix of acknowledged lines, so after a restart reading resumes there, and a line
acknowledged past a gap is read again (at least once). The positions file is replaced atomically
(write, fsync, rename) at most every ``interval`` seconds and when a file finishes or the source stops.
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import orjson

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["FilePosition", "Positions"]


@dataclass(slots=True)
class FilePosition:
    done: int = 0
    """Lines 1..done are acknowledged (the header row of a CSV counts as acknowledged)."""
    acked: set[int] = field(default_factory=set)
    """Acknowledged line numbers past ``done``."""

    def ack(self, line: int) -> None:
        self.acked.add(line)
        while self.done + 1 in self.acked:
            self.done += 1
            self.acked.discard(self.done)


class Positions:
    def __init__(self, path: Path, *, interval: float = 0.5) -> None:
        self.path = path
        self.interval = interval
        self.files: dict[str, FilePosition] = {}
        self._saved_at = 0.0
        self._dirty = False

    def load(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            stored = orjson.loads(self.path.read_bytes())
            self.files = {name: FilePosition(done=int(done)) for name, done in stored.items()}

    def of(self, name: str) -> FilePosition:
        return self.files.setdefault(name, FilePosition())

    def ack(self, name: str, line: int) -> None:
        self.of(name).ack(line)
        self._dirty = True
        if time.monotonic() - self._saved_at >= self.interval:
            self.save()

    def forget(self, name: str) -> None:
        self.files.pop(name, None)
        self._dirty = True
        self.save()

    def save(self) -> None:
        if not self._dirty:
            return
        data = orjson.dumps({name: position.done for name, position in self.files.items()})
        temporary = self.path.with_name(self.path.name + ".tmp")
        with temporary.open("wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        temporary.replace(self.path)
        self._saved_at = time.monotonic()
        self._dirty = False
