"""Long loops on the event loop, in turns: other tasks run between slices of the work.

A background writer that turns thousands of records into rows (or hashes a chain of them) in one
synchronous loop holds up every request on the loop for as long as it takes. In slices it holds
them up for one slice at most. A slice is :data:`SLICE` items, or a :data:`TURNS`-th of the work
when that is more: under overload every turn waits behind every ready request, so a batch must
finish in a bounded number of turns or the writer falls behind the load that fills its queue.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Final, TypeVar

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Sequence

__all__ = ["SLICE", "TURNS", "in_turns"]

T = TypeVar("T")

SLICE: Final = 32
"""Items between two turns of the event loop, at least."""
TURNS: Final = 16
"""Turns a sequence takes, at most (more items make longer slices)."""


async def in_turns(items: Sequence[T]) -> AsyncIterator[T]:
    """``items`` one by one, letting the event loop run other tasks between slices of them."""
    every = max(SLICE, -(-len(items) // TURNS))
    for index, item in enumerate(items, 1):
        yield item
        if index % every == 0:
            await asyncio.sleep(0)
