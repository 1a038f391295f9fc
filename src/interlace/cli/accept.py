"""Accept every waiting connection whenever the listening socket is readable, not one per loop turn.

uvloop's servers (libuv underneath) accept one connection each time the event loop turns. A gateway
under load turns slowly — each turn runs the ready steps of every request in flight, milliseconds of
work — so new connections were accepted at a few dozen a second: 256 clients connecting at once to a
busy gateway waited up to five seconds in the kernel's accept queue with their first request unread,
while no request took the app more than 0.2 s. That was the benchmark's c=256 tail (p99 3.5 s), and
it came and went with how busy the loop was when the clients connected. asyncio's own loop accepts
up to a backlog's worth per turn; :class:`BatchAcceptor` does so on any loop, and :class:`Server` is
uvicorn's server with it on the sockets ``interlace serve`` binds.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import sys
from typing import TYPE_CHECKING, Any, Final

import uvicorn
from uvicorn.config import STARTUP_FAILURE

if TYPE_CHECKING:
    import socket
    import ssl
    from collections.abc import Callable

__all__ = ["BatchAcceptor", "Server"]

log = logging.getLogger("interlace.serve")

ACCEPTS_PER_TURN: Final = 1024
"""At most this many connections accepted per readiness of the listening socket."""

_RETRY_AFTER: Final = 0.1
"""Seconds before accepting again after running out of file descriptors or memory."""

_OUT_OF_RESOURCES: Final = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})


class BatchAcceptor:
    """Serves ``protocol_factory`` on a bound, listening socket; closed like an ``asyncio.Server``."""

    def __init__(
        self,
        sock: socket.socket,
        protocol_factory: Callable[[], asyncio.Protocol],
        *,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self._sock = sock
        self._factory = protocol_factory
        self._ssl = ssl_context
        self._loop = asyncio.get_running_loop()
        self._pending: set[asyncio.Task[None]] = set()
        self._retry: asyncio.TimerHandle | None = None
        self._closed = False
        sock.setblocking(False)  # noqa: FBT003 - the socket API's own signature
        self._loop.add_reader(sock.fileno(), self._accept_waiting)

    def _accept_waiting(self) -> None:
        for _ in range(ACCEPTS_PER_TURN):
            try:
                connection, _ = self._sock.accept()
            except (BlockingIOError, InterruptedError):
                return  # none waiting (or another worker took it)
            except ConnectionAbortedError:
                continue  # the client gave up while waiting
            except OSError as exc:
                # like asyncio's servers: stop accepting a moment instead of spinning on the error
                level = logging.WARNING if exc.errno in _OUT_OF_RESOURCES else logging.ERROR
                log.log(level, "cannot accept connections (%s); retrying in %.1fs", exc, _RETRY_AFTER)
                self._loop.remove_reader(self._sock.fileno())
                self._retry = self._loop.call_later(_RETRY_AFTER, self._resume)
                return
            connection.setblocking(False)  # noqa: FBT003
            task = self._loop.create_task(self._serve(connection))
            self._pending.add(task)
            task.add_done_callback(self._pending.discard)

    async def _serve(self, connection: socket.socket) -> None:
        """Hand the connection to a transport and its protocol (the TLS handshake first, with TLS)."""
        try:
            await self._loop.connect_accepted_socket(self._factory, connection, ssl=self._ssl)
        except (TimeoutError, OSError) as exc:  # a failed handshake, a client already gone
            log.debug("connection dropped before it was served: %s", exc)
            connection.close()

    def _resume(self) -> None:
        self._retry = None
        if not self._closed:
            self._loop.add_reader(self._sock.fileno(), self._accept_waiting)

    def close(self) -> None:
        """Stop accepting (the socket stays open: its owner closes it)."""
        if self._closed:
            return
        self._closed = True
        if self._retry is not None:
            self._retry.cancel()
        else:
            self._loop.remove_reader(self._sock.fileno())

    async def wait_closed(self) -> None:
        """Wait for the connections accepted before :meth:`close` to be handed over."""
        while self._pending:
            await asyncio.gather(*tuple(self._pending), return_exceptions=True)


class Server(uvicorn.Server):
    """uvicorn's server, accepting on the given sockets with :class:`BatchAcceptor`."""

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        if not sockets:
            await super().startup(sockets)
            return
        await self.lifespan.startup()
        if self.lifespan.should_exit:
            sys.exit(STARTUP_FAILURE)
        config = self.config

        def create_protocol() -> asyncio.Protocol:
            protocol: asyncio.Protocol = config.http_protocol_class(  # type: ignore[call-arg]
                config=config, server_state=self.server_state, app_state=self.lifespan.state
            )
            return protocol

        acceptors: list[Any] = [
            BatchAcceptor(sock, create_protocol, ssl_context=config.ssl) for sock in sockets
        ]
        self.servers = acceptors  # uvicorn's shutdown closes them and waits, as it does its servers
        self.started = True
