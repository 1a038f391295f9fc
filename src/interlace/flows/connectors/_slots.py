"""In-flight slots: how a source knows how many more messages it may fetch.

A source takes one slot per delivery it hands out and gives it back when the delivery is acked or
nacked; it fetches at most :attr:`Slots.free` messages at a time (the JetStream batch, the
``XREADGROUP COUNT``, the Kafka ``max_records``), so the broker keeps the rest and memory stays flat.
"""

from __future__ import annotations

import asyncio

__all__ = ["Slots"]


class Slots:
    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError("max_in_flight must be at least 1")
        self.limit = limit
        self.used = 0
        self._changed = asyncio.Event()

    @property
    def free(self) -> int:
        return self.limit - self.used

    async def wait_free(self) -> int:
        """Wait until at least one slot is free; the number of free slots."""
        while self.free <= 0:
            self._changed.clear()
            await self._changed.wait()
        return self.free

    def take(self, count: int = 1) -> None:
        self.used += count

    def give(self) -> None:
        self.used -= 1
        self._changed.set()
