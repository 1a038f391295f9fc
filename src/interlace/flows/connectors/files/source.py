"""The files source: every file of a watched directory matching ``pattern``, line by line, in name order.

A message per line: JSON lines (a line that is not JSON becomes ``{"data": "<line>"}``) or CSV rows as
objects keyed by the header row (one physical line per row). Its id and position are ``<file>:<line>``.
Only complete lines (ending in a newline) are read, so producers should write a file under another
name and rename it into the directory when complete. When every line of a file was acknowledged, the
file is moved to ``done_dir`` (or renamed ``<file>.done``) and forgotten by the positions file
(:mod:`~interlace.flows.connectors.files.positions`), which makes a restart resume where it stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from interlace.flows.connectors.files.positions import Positions
from interlace.flows.message import Message

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from interlace.flows.connectors.files.config import FilesSourceConfig
    from interlace.flows.services import FlowServices

__all__ = ["FileDelivery", "FilesSource"]

log = logging.getLogger("interlace.flows.files")


class FileDelivery:
    __slots__ = ("_file", "_line", "_message", "_source")

    def __init__(self, source: FilesSource, file: str, line: int, message: Message) -> None:
        self._source = source
        self._file = file
        self._line = line
        self._message = message

    @property
    def message(self) -> Message:
        return self._message

    @property
    def redelivered(self) -> bool:
        return False

    async def ack(self) -> None:
        self._source._settle(self._file, self._line, acked=True)  # noqa: SLF001

    async def nack(self, *, requeue: bool = True) -> None:
        del requeue
        self._source._settle(self._file, self._line, acked=False)  # noqa: SLF001


class _Reading:
    """One file being read: its next line number, header (CSV), and lines handed out, not yet acked."""

    def __init__(self, path: Path, start: int) -> None:
        self.path = path
        self.next_line = start + 1
        self.offset: int | None = None
        self.header: list[str] | None = None
        self.out: set[int] = set()
        self.nacked: list[int] = []
        self.eof = False


class FilesSource:
    def __init__(self, config: FilesSourceConfig, services: FlowServices | None = None) -> None:
        del services
        self.config = config
        self.dir = Path(config.dir)
        self.name = f"files:{self.dir.name}"
        self.positions = Positions(
            Path(config.positions) if config.positions else self.dir / ".interlace-positions.json"
        )
        self.done_dir = Path(config.done_dir) if config.done_dir else self.dir / "done"
        self._reading: dict[str, _Reading] = {}
        self._wake = asyncio.Event()

    async def start(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        self.positions.load()

    async def deliveries(self, *, max_in_flight: int) -> AsyncIterator[FileDelivery]:
        while True:
            handed = False
            for path in sorted(self.dir.glob(self.config.pattern)):
                if not path.is_file() or path.name.endswith(".done"):
                    continue
                reading = self._reading.get(path.name)
                if reading is None:
                    reading = _Reading(path, self.positions.of(path.name).done)
                    self._reading[path.name] = reading
                while True:
                    while sum(len(r.out) for r in self._reading.values()) >= max_in_flight:
                        self._wake.clear()
                        await self._wake.wait()
                    item = await self._next(reading)
                    if item is None:
                        break
                    handed = True
                    yield item
                self._finish_if_done(reading)
            if not handed:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.config.poll_interval)

    async def _next(self, reading: _Reading) -> FileDelivery | None:
        if reading.nacked:
            line_number = reading.nacked.pop(0)
            text = await asyncio.to_thread(_line_at, reading.path, line_number)
        else:
            found = await asyncio.to_thread(self._read_line, reading)
            if found is None:
                return None
            line_number, text = found
        if text is None:
            return None
        if self.config.format == "csv" and reading.header is None:
            reading.header = next(csv.reader([text]))
            self.positions.ack(reading.path.name, line_number)  # the header row is never a message
            return await self._next(reading)
        reading.out.add(line_number)
        ident = f"{reading.path.name}:{line_number}"
        payload = self._decode(text, reading)
        key = None
        field = self.config.key_field
        if field is not None and isinstance(payload, dict) and payload.get(field) is not None:
            key = str(payload[field])
        message = Message(id=ident, payload=payload, key=key, source=self.name, position=ident)
        return FileDelivery(self, reading.path.name, line_number, message)

    def _read_line(self, reading: _Reading) -> tuple[int, str] | None:
        """The next complete line of the file (skipping to the stored position the first time)."""
        with reading.path.open("rb") as file:
            if reading.offset is None:
                reading.offset = 0
                skip = reading.next_line - 1
                if self.config.format == "csv" and skip > 0:  # the header is needed again
                    header = file.readline()
                    reading.header = next(csv.reader([header.decode("utf-8").rstrip("\r\n")]))
                    skip -= 1
                for _ in range(skip):
                    if not file.readline().endswith(b"\n"):
                        break
                reading.offset = file.tell()
            file.seek(reading.offset)
            raw = file.readline()
            if not raw.endswith(b"\n"):
                reading.eof = True
                return None
            reading.offset = file.tell()
            reading.eof = False
        number = reading.next_line
        reading.next_line += 1
        return number, raw.decode("utf-8", "replace").rstrip("\r\n")

    def _decode(self, text: str, reading: _Reading) -> Any:
        if self.config.format == "csv":
            values = next(csv.reader([text]), [])
            return dict(zip(reading.header or [], values, strict=False))
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError:
            return {"data": text}

    def _settle(self, file: str, line: int, *, acked: bool) -> None:
        reading = self._reading.get(file)
        if reading is not None:
            reading.out.discard(line)
            if not acked:
                reading.nacked.append(line)
        if acked:
            self.positions.ack(file, line)
        self._wake.set()

    def _finish_if_done(self, reading: _Reading) -> None:
        if not reading.eof or reading.out or reading.nacked:
            return
        name = reading.path.name
        if self.positions.of(name).done < reading.next_line - 1:
            return
        try:
            if self.config.done == "move":
                self.done_dir.mkdir(parents=True, exist_ok=True)
                reading.path.replace(self.done_dir / name)
            else:
                reading.path.replace(reading.path.with_name(name + ".done"))
        except OSError:
            log.exception("files source: could not move the finished file %s", reading.path)
            return
        del self._reading[name]
        self.positions.forget(name)

    async def aclose(self) -> None:
        self.positions.save()


def _line_at(path: Path, number: int) -> str | None:
    with path.open("rb") as file:
        for index, raw in enumerate(file, start=1):
            if index == number:
                return raw.decode("utf-8", "replace").rstrip("\r\n")
    return None
