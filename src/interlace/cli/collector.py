"""The garbage collector while ``interlace serve`` starts: no full collection until it is ready.

Starting loads objects that live as long as the process: the modules, the configuration's models,
SQLAlchemy's tables, the routes, the app. Each full collection traverses every one of them (tens of
milliseconds once the gateway is loaded, several times during a start-up) and finds next to nothing
to free: a few hundred objects. So while the server starts, :func:`full_collections_held` puts the
full-collection threshold out of reach — the young generations are still collected, so short-lived
garbage is freed as before — and once it is ready, :func:`freeze_start_up` moves everything start-up
built out of the collector's generations (``gc.freeze``: later full collections do not traverse it,
and it keeps full collections from stalling requests in flight) and gives full collections back.
"""

from __future__ import annotations

import contextlib
import gc
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = ["freeze_start_up", "full_collections_held"]

_OUT_OF_REACH: Final = 1 << 30
"""A full-collection threshold (collections of the middle generation) that start-up never reaches."""

_FULL_THRESHOLD: Final = 10
"""CPython's default full-collection threshold, given back by :func:`freeze_start_up`."""


@contextlib.contextmanager
def full_collections_held() -> Iterator[None]:
    """No full collection within the block (unless :func:`freeze_start_up` ends the hold earlier)."""
    previous = gc.get_threshold()
    gc.set_threshold(previous[0], previous[1], _OUT_OF_REACH)
    try:
        yield
    finally:
        gc.set_threshold(*previous)


def freeze_start_up() -> None:
    """Start-up is over: freeze what it built and, if they were held, let full collections run again."""
    gc.freeze()
    young, middle, full = gc.get_threshold()
    if full == _OUT_OF_REACH:
        gc.set_threshold(young, middle, _FULL_THRESHOLD)
