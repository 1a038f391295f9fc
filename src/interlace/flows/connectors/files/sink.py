"""The files sink: one JSON line per message, appended and fsync'd before the write is confirmed.

At least once: a message redelivered after a crash between the fsync and the source's ack is written
again (its ``id`` in the envelope tells a reader). Writes are serialised by a lock and run in a thread.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    from collections.abc import Sequence

    from interlace.flows.connectors.files.config import FilesSinkConfig
    from interlace.flows.message import Message
    from interlace.flows.services import FlowServices

__all__ = ["FilesSink", "envelope"]


def envelope(message: Message) -> dict[str, Any]:
    return {
        "id": message.id,
        "key": message.key,
        "source": message.source,
        "position": message.position,
        "headers": message.headers,
        "payload": message.payload,
    }


class FilesSink:
    def __init__(self, config: FilesSinkConfig, services: FlowServices | None = None) -> None:
        del services
        self.config = config
        self.path = Path(config.path)
        self.name = f"files:{self.path.name}"
        self._lock = asyncio.Lock()

    async def start(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)

    async def write(self, messages: Sequence[Message]) -> None:
        whole = self.config.format == "envelope"
        data = b"".join(
            orjson.dumps(envelope(m) if whole else m.payload, option=orjson.OPT_APPEND_NEWLINE)
            for m in messages
        )
        async with self._lock:
            await asyncio.to_thread(self._append, data)

    def _append(self, data: bytes) -> None:
        with self.path.open("ab") as file:
            file.write(data)
            file.flush()
            if self.config.fsync:
                os.fsync(file.fileno())

    async def aclose(self) -> None:
        return None
