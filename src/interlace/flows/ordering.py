"""Per-key ordering: messages with the same key are processed one at a time, in delivery order.

The engine asks for a :class:`Turn` synchronously as it hands each delivery to its task (so turns are
taken in delivery order); a turn is entered once the previous turn of its key was left. Messages
without a key are not ordered. A turn abandoned before it started (a drain cancelled it) passes on
only when its predecessor finishes, so the order still holds for the next message of the key.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from types import TracebackType

__all__ = ["KeySequencer", "Turn"]


class KeySequencer:
    """The last turn of each key still in progress; entries vanish when their key goes quiet."""

    __slots__ = ("_tails",)

    def __init__(self) -> None:
        self._tails: dict[str, asyncio.Future[None]] = {}

    def turn(self, key: str | None) -> Turn:
        """The next turn of ``key`` (a turn that never waits when ``key`` is None)."""
        if key is None:
            return Turn(self, None, None, None)
        previous = self._tails.get(key)
        mine: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._tails[key] = mine
        return Turn(self, key, previous, mine)

    def __len__(self) -> int:
        return len(self._tails)

    def _left(self, key: str, mine: asyncio.Future[None]) -> None:
        if self._tails.get(key) is mine:
            del self._tails[key]


class Turn:
    __slots__ = ("_key", "_mine", "_previous", "_sequencer")

    def __init__(
        self,
        sequencer: KeySequencer,
        key: str | None,
        previous: asyncio.Future[None] | None,
        mine: asyncio.Future[None] | None,
    ) -> None:
        self._sequencer = sequencer
        self._key = key
        self._previous = previous
        self._mine = mine

    async def __aenter__(self) -> None:
        if self._previous is not None and not self._previous.done():
            try:
                await asyncio.shield(self._previous)
            except asyncio.CancelledError:
                self._pass_on_after_previous()
                raise

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._finish()

    def abandon(self) -> None:
        """The task holding this turn ended (even before it ran): make sure the key moves on."""
        mine = self._mine
        if mine is None or mine.done():
            return
        if self._previous is None or self._previous.done():
            self._finish()
        else:
            self._pass_on_after_previous()

    def _pass_on_after_previous(self) -> None:
        previous, mine = self._previous, self._mine
        if previous is None or mine is None:
            return
        self._mine = None  # finished by the predecessor, not by __aexit__
        key = self._key

        def finish(_: asyncio.Future[None]) -> None:
            if not mine.done():
                mine.set_result(None)
            if key is not None:
                self._sequencer._left(key, mine)  # noqa: SLF001

        previous.add_done_callback(finish)

    def _finish(self) -> None:
        mine = self._mine
        if mine is None:
            return
        if not mine.done():
            mine.set_result(None)
        if self._key is not None:
            self._sequencer._left(self._key, mine)  # noqa: SLF001
