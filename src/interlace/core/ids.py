"""Identifiers that must be unique, not secret: request ids, reservation ids, audit entry ids.

They come from :func:`random.getrandbits` (the process's Mersenne Twister, seeded from the OS at
start-up and again in every forked worker), not from ``os.urandom``: that is a system call that
releases the GIL, and on the request path each release lets a background thread (the database
driver's, the log writer's) take the interpreter for a while — measured at tens of microseconds a
call under load, against under one for this. Never use these for anything an attacker must not
guess (keys, secrets, tokens): those come from :mod:`secrets`.
"""

from __future__ import annotations

import random

__all__ = ["unique_hex"]


def unique_hex(bits: int = 128) -> str:
    """``bits`` random bits as lower-case hex (``bits // 4`` digits; a multiple of 4)."""
    return f"{random.getrandbits(bits):0{bits // 4}x}"
