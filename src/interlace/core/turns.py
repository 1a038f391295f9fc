"""Long loops on the event loop, in turns: other tasks run between slices of the work.

A background writer that turns thousands of records into rows (or hashes a chain of them) in one
synchronous loop holds up every request on the loop for as long as it takes; in slices of
:data:`SLICE` items, the longest hold-up is one slice's worth (well under a millisecond).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Final, TypeVar

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterable

__all__ = ["SLICE", "in_turns"]

T = TypeVar("T")

SLICE: Final = 32
"""Items between two turns of the event loop."""


async def in_turns(items: Iterable[T], every: int = SLICE) -> AsyncIterator[T]:
    """``items`` one by one, letting the event loop run other tasks after every ``every`` of them."""
    for index, item in enumerate(items, 1):
        yield item
        if index % every == 0:
            await asyncio.sleep(0)
