"""Identifiers that must be unique, not secret: request ids, reservation ids, audit entry ids.

They come from a Mersenne Twister seeded from the OS (and seeded again in every forked worker), not
from ``os.urandom``: that is a system call that releases the GIL, and on the request path each
release lets a background thread (the database driver's, the log writer's) take the interpreter for
a while — measured at tens of microseconds a call under load, against under one for this. The
generator is this module's own, not :mod:`random`'s shared one, so nothing else's random sequence
(a test's seeded one, a property-based test's) is disturbed by requests. It is the project's one
piece of module-level state, on purpose: an id source every layer can call without threading an
object through. Never use these for anything an attacker must not guess (keys, secrets, tokens):
those come from :mod:`secrets`.
"""

from __future__ import annotations

import os
import random
import time
from typing import Final

__all__ = ["sortable_hex", "unique_hex"]

_GENERATOR: Final = random.Random(os.urandom(32))  # noqa: S311 - unique, not secret (see above)
os.register_at_fork(after_in_child=lambda: _GENERATOR.seed(os.urandom(32)))


def unique_hex(bits: int = 128) -> str:
    """``bits`` random bits as lower-case hex (``bits // 4`` digits; a multiple of 4)."""
    return f"{_GENERATOR.getrandbits(bits):0{bits // 4}x}"


def sortable_hex(bits: int = 128) -> str:
    """Like :func:`unique_hex`, but the first 48 bits are the wall clock's milliseconds (as UUIDv7).

    For ids that are indexed where they are stored (request, event and audit entry ids): new ones
    sort after older ones, so an insert lands on the index's last page instead of a random one. With
    random ids each appended row dirtied one more page of every such index — most of what a batch
    of the event and audit logs wrote.
    """
    return f"{time.time_ns() // 1_000_000 << (bits - 48) | _GENERATOR.getrandbits(bits - 48):0{bits // 4}x}"
