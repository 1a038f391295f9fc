"""A pool of keep-alive HTTP/1.1 connections to one origin, at most ``max_connections`` open.

``send(request)`` takes an idle connection (the most recently used: the least likely to have been
closed by the server's own idle timeout), or opens one while fewer than ``max_connections`` are
open, or waits in line (FIFO) until a connection is handed back or a slot frees. It writes the
request and returns the :class:`~interlace.providers.h1.response.Response` once its headers arrived;
``Response.close()`` hands the connection back: kept (idle) only when the whole body arrived and
both sides keep the connection alive, closed otherwise. Idle connections are closed after
``keep_alive`` seconds unused; one the server closes meanwhile is forgotten as soon as the loop
sees it.

Slots: ``_open`` counts connections open, being opened, and slots granted to a waiter that is about
to open one; it never exceeds ``max_connections``. Whoever stops holding a slot (a connection
closed, a connect that failed or was cancelled, a cancelled waiter that had just been granted one)
gives it to the next waiter.

**The one retry.** A server closes an idle keep-alive connection when it chooses (uvicorn after 5 s);
if that close crosses our request on the wire, the request fails before any byte of an answer
arrives. Exactly then — a *reused* connection, closed or reset with not one response byte received
— the request is sent once more, on a new connection. That is safe because such a server closed the
connection as idle, before reading the request: it never acted on it (a server that reads a request
answers it, or at least starts to; a crash between reading and answering is the rare exception, and
every request this client sends is an inference call whose repetition costs tokens, not state). A
request on a *new* connection is never retried, nor one that got any byte back, nor a timeout.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from typing import TYPE_CHECKING

from interlace.providers.h1.connection import Connection
from interlace.providers.h1.errors import (
    ConnectError,
    ConnectTimeoutError,
    PoolClosedError,
    ServerDisconnectedError,
    TLSCertificateError,
    TLSHandshakeError,
)
from interlace.providers.h1.response import Response

if TYPE_CHECKING:
    from interlace.providers.h1.origin import Origin

__all__ = ["ConnectionPool"]

_CLOSE_GRACE = 2.0  # seconds aclose() waits for the transports to report themselves closed


class _StaleConnectionError(Exception):
    """A reused connection was closed by the server before it answered: send again on a new one."""


class ConnectionPool:
    """Keep-alive connections to ``origin``; must be created and used on one running event loop."""

    def __init__(
        self,
        origin: Origin,
        *,
        max_connections: int,
        connect_timeout: float,
        keep_alive: float = 15.0,
    ) -> None:
        if max_connections < 1:
            raise ValueError("max_connections must be at least 1")
        self.origin = origin
        self.max_connections = max_connections
        self.connect_timeout = connect_timeout
        self.keep_alive = keep_alive
        self._loop = asyncio.get_running_loop()
        self._open = 0
        self._idle: deque[Connection] = deque()
        self._waiters: deque[asyncio.Future[Connection | None]] = deque()
        self._connections: set[Connection] = set()
        self._sweeper: asyncio.TimerHandle | None = None
        self._closed = False

    @property
    def open_connections(self) -> int:
        """Connections open or being opened (the slots in use)."""
        return self._open

    @property
    def idle_connections(self) -> int:
        return len(self._idle)

    @property
    def waiting(self) -> int:
        """Requests waiting for a connection."""
        return sum(1 for waiter in self._waiters if not waiter.done())

    async def send(self, request: bytes) -> Response:
        """Send one encoded request; return its response once the status line and headers arrived.

        The caller must ``close()`` the response (after reading it, or to abandon it). Cancelled or
        failed at any point, the connection is closed and its slot given back.
        """
        connection = self._take_idle() or await self._acquire()
        try:
            return await self._exchange(connection, request)
        except _StaleConnectionError:
            pass
        # the failed connection's slot is still held: open the new connection in it
        return await self._exchange(await self._connect(), request)

    async def aclose(self) -> None:
        """Close every connection (in use or idle) and fail the requests waiting for one."""
        if self._closed:
            return
        self._closed = True
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_exception(PoolClosedError("the connection pool was closed"))
        connections = list(self._connections)
        for connection in connections:
            connection.close()
        closing = [c.closed_future() for c in connections if not c.closed]
        if closing:
            await asyncio.wait(closing, timeout=_CLOSE_GRACE)
        for connection in connections:  # a TLS peer that never answered close_notify
            connection.abort()

    # --- one exchange ---

    async def _exchange(self, connection: Connection, request: bytes) -> Response:
        reused = connection.requests > 0
        if not connection.usable:  # closed by the server while this request waited for it
            if reused:
                self._forget_for_retry(connection)
                raise _StaleConnectionError
            self._release(connection, reusable=False)
            raise ServerDisconnectedError(
                "Server disconnected before sending a response", before_response=True
            )
        response = Response(connection, self._release)
        try:
            connection.send(response, request)
            await response.wait_headers()
        except ServerDisconnectedError as exc:
            if reused and exc.before_response:
                response.detach()
                self._forget_for_retry(connection)
                raise _StaleConnectionError from exc
            response.close()
            raise
        except BaseException:
            response.close()  # cancelled or timed out: the answer is unread, the connection closed
            raise
        return response

    def _forget_for_retry(self, connection: Connection) -> None:
        """Drop a stale connection but keep its slot for the retry's new connection."""
        connection.response = None
        connection.holds_slot = False
        connection.abort()
        self._connections.discard(connection)

    # --- connections and slots ---

    def _take_idle(self) -> Connection | None:
        idle = self._idle
        if not idle:
            return None
        oldest_kept = self._loop.time() - self.keep_alive
        while idle:
            connection = idle.pop()
            connection.idle = False
            if connection.usable and connection.idle_since > oldest_kept:
                return connection
            connection.close()
            self._forget(connection)
        return None

    async def _acquire(self) -> Connection:
        if self._closed:
            raise PoolClosedError("the connection pool is closed")
        if self._open < self.max_connections:
            self._open += 1
            return await self._connect()
        waiter: asyncio.Future[Connection | None] = self._loop.create_future()
        self._waiters.append(waiter)
        try:
            granted = await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                self._pass_on(waiter.result())  # granted just before this task was cancelled
            raise
        if granted is None:  # a slot, counted for us: open a connection in it
            return await self._connect()
        return granted

    async def _connect(self) -> Connection:
        """Open a connection in a slot already counted in ``_open``; failing, give the slot back."""
        origin = self.origin
        loop = self._loop
        try:
            try:
                async with asyncio.timeout(self.connect_timeout):
                    _, connection = await loop.create_connection(
                        lambda: Connection(loop, self._lost),
                        origin.host,
                        origin.port,
                        ssl=origin.tls,
                        server_hostname=origin.host if origin.tls is not None else None,
                    )
            except TimeoutError:
                raise ConnectTimeoutError(
                    f"no connection to {origin.host_header} within {self.connect_timeout:g}s"
                ) from None
            except ssl.SSLCertVerificationError as exc:
                raise TLSCertificateError(exc) from None
            except ssl.SSLError as exc:
                raise TLSHandshakeError(exc) from None
            except OSError as exc:
                raise ConnectError(exc) from None
        except BaseException:
            self._open -= 1
            self._grant_slot()
            raise
        connection.holds_slot = True
        self._connections.add(connection)
        if self._closed:  # aclose() ran while this connection was being opened
            connection.abort()
            self._forget(connection)
            raise PoolClosedError("the connection pool was closed")
        return connection

    def _release(self, connection: Connection, reusable: bool) -> None:
        """A response is done with ``connection`` (Response.close)."""
        connection.response = None
        if not connection.holds_slot:  # dropped for a retry, or already forgotten
            return
        if not reusable:
            connection.abort()  # mid-answer or broken: nothing of it is worth a graceful close
            self._forget(connection)
            return
        if self._closed or not connection.usable:
            connection.close()
            self._forget(connection)
            return
        self._pass_on(connection)

    def _pass_on(self, granted: Connection | None) -> None:
        """Give a free connection (or a slot: None) to the first waiter, else keep it idle (or free it)."""
        if granted is None:
            self._open -= 1
            self._grant_slot()
            return
        if not granted.usable:
            self._forget(granted)
            return
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(granted)
                return
        granted.idle = True
        granted.idle_since = self._loop.time()
        self._idle.append(granted)
        if self._sweeper is None:
            self._sweeper = self._loop.call_at(granted.idle_since + self.keep_alive, self._sweep)

    def _forget(self, connection: Connection) -> None:
        """``connection`` is closed or closing: stop counting it, and give its slot on."""
        self._connections.discard(connection)
        if connection.holds_slot:
            connection.holds_slot = False
            self._open -= 1
            self._grant_slot()

    def _grant_slot(self) -> None:
        """A slot is free: the first waiter gets it (and counts it) to open a connection."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                self._open += 1
                waiter.set_result(None)
                return

    def _lost(self, connection: Connection) -> None:
        """The transport reported ``connection`` closed (by either side)."""
        if connection.idle:
            connection.idle = False
            self._idle.remove(connection)
            self._forget(connection)
        elif connection.response is None:  # neither idle nor in use: already handed back or dropped
            self._connections.discard(connection)
        # in use: the response has the error; its close() gives the slot back

    def _sweep(self) -> None:
        """Close the connections idle for ``keep_alive`` seconds; re-arm for the next oldest."""
        self._sweeper = None
        idle = self._idle
        oldest_kept = self._loop.time() - self.keep_alive
        while idle and idle[0].idle_since <= oldest_kept:
            connection = idle.popleft()
            connection.idle = False
            connection.close()
            self._forget(connection)
        if idle:
            self._sweeper = self._loop.call_at(idle[0].idle_since + self.keep_alive, self._sweep)
