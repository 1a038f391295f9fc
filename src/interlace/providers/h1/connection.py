"""One keep-alive HTTP/1.1 connection: an asyncio protocol that hands its bytes to the current response.

A connection carries one exchange at a time (no pipelining): the pool gives it a request and a
:class:`~interlace.providers.h1.response.Response`, and every byte that arrives goes to that response's
parser. Bytes that arrive while no response is expected mean the server is out of step: the
connection is dropped. When the server closes (EOF, reset), the current response learns it first, then
the pool (``on_lost``), which forgets the connection if it was idle.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, cast

if TYPE_CHECKING:
    from collections.abc import Callable

    from interlace.providers.h1.response import Response

__all__ = ["Connection"]


class Connection(asyncio.Protocol):
    """A transport, the response it is reading, and the pool's bookkeeping about it.

    ``holds_slot``: counted in the pool's open connections; ``idle``: in the pool's idle list (since
    ``idle_since``, loop time); ``requests``: how many requests were sent on it.
    """

    __slots__ = (
        "_closed_waiter",
        "_on_lost",
        "closed",
        "holds_slot",
        "idle",
        "idle_since",
        "loop",
        "requests",
        "response",
        "transport",
    )

    def __init__(self, loop: asyncio.AbstractEventLoop, on_lost: Callable[[Connection], None]) -> None:
        self.loop = loop
        self._on_lost = on_lost
        self.transport: asyncio.Transport | None = None
        self.response: Response | None = None
        self.closed = False
        self.holds_slot = False
        self.idle = False
        self.idle_since = 0.0
        self.requests = 0
        self._closed_waiter: asyncio.Future[None] | None = None

    @property
    def usable(self) -> bool:
        """Open on both sides, as far as this side knows."""
        transport = self.transport
        return not self.closed and transport is not None and not transport.is_closing()

    def send(self, response: Response, request: bytes) -> None:
        """Write one whole request; its answer goes to ``response``."""
        self.response = response
        self.requests += 1
        cast("asyncio.Transport", self.transport).write(request)

    def pause_reading(self) -> None:
        if self.usable:
            cast("asyncio.Transport", self.transport).pause_reading()

    def resume_reading(self) -> None:
        if self.usable:
            cast("asyncio.Transport", self.transport).resume_reading()

    def close(self) -> None:
        """Close gracefully (what was written is still sent; TLS says close_notify)."""
        if not self.closed and self.transport is not None:
            self.transport.close()

    def abort(self) -> None:
        """Close at once, dropping whatever is buffered: for a connection in an unknown state."""
        if not self.closed and self.transport is not None:
            self.transport.abort()

    def closed_future(self) -> asyncio.Future[None]:
        """Done once the transport reported the connection lost."""
        if self._closed_waiter is None:
            self._closed_waiter = self.loop.create_future()
            if self.closed:
                self._closed_waiter.set_result(None)
        return self._closed_waiter

    # --- asyncio.Protocol ---

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast("asyncio.Transport", transport)

    def data_received(self, data: bytes) -> None:
        response = self.response
        if response is None:
            self.abort()  # nobody asked: the server is out of step with this connection
            return
        response.feed(data)

    def eof_received(self) -> bool:
        return False  # the server is done with this connection: close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.response is not None:
            self.response.connection_lost(exc)
        self._on_lost(self)
        if self._closed_waiter is not None and not self._closed_waiter.done():
            self._closed_waiter.set_result(None)
