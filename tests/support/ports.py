"""Loopback ports that refuse connections for as long as a test needs them to."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def refusing_port() -> Iterator[int]:
    """A 127.0.0.1 port that refuses every connection while the block runs: bound, never listening.

    A port that is bound and then closed is free again at once: a server started later may be given it,
    and so may a connection to it as its own source port, which on loopback connects the socket to itself
    (a TCP simultaneous open) so the "refused" endpoint accepts and stays silent. Holding the port bound
    rules out both.
    """
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield int(sock.getsockname()[1])
