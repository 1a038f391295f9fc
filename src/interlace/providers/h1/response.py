"""One HTTP/1.1 response: fed by its connection's parser (httptools), read whole or as it arrives.

The parser calls this object back (``on_header``, ``on_headers_complete``, ``on_body``,
``on_message_complete``); httptools does the framing (Content-Length, chunked, until close). The
body is buffered as the chunks that arrived; above :data:`HIGH_WATER` buffered bytes the socket stops
being read (``pause_reading``) until the reader drains them, so a slow reader of a fast stream holds
one buffer's worth in memory, not the whole answer.

Headers are a dict keyed by lower-case name; a repeated header's values are joined with ", ".
"""

from __future__ import annotations

import zlib
from typing import TYPE_CHECKING, Final

import httptools

from interlace.providers.h1.decoding import content_decoder
from interlace.providers.h1.errors import (
    ContentDecodingError,
    HTTPClientError,
    ProtocolError,
    ServerDisconnectedError,
)

if TYPE_CHECKING:
    import asyncio
    from collections.abc import Callable

    from interlace.providers.h1.connection import Connection
    from interlace.providers.h1.decoding import Decoder

__all__ = ["HIGH_WATER", "Response"]

#: Buffered body bytes above which the connection stops reading until the reader catches up.
HIGH_WATER: Final = 256 * 1024
_FIRST_FINAL_STATUS: Final = 200
_NO_BODY_STATUSES: Final = frozenset({204, 304})


class Response:
    """The answer to the request just sent on ``connection``; ``close()`` hands the connection back.

    ``release(connection, reusable)`` is the pool's: ``reusable`` only when the whole body arrived,
    nothing went wrong and both sides keep the connection alive.
    """

    __slots__ = (
        "_buffered",
        "_chunks",
        "_connection",
        "_decoder",
        "_error",
        "_informational",
        "_loop",
        "_parser",
        "_paused",
        "_read_all",
        "_release",
        "_released",
        "_until_close",
        "_waiter",
        "complete",
        "headers",
        "headers_received",
        "http_version",
        "keep_alive",
        "received_any",
        "status",
    )

    def __init__(self, connection: Connection, release: Callable[[Connection, bool], None]) -> None:
        self.status = 0
        self.headers: dict[str, str] = {}
        self.http_version = ""
        self.headers_received = False
        self.complete = False
        self.received_any = False
        self.keep_alive = False
        self._connection = connection
        self._loop = connection.loop
        self._release = release
        self._released = False
        self._parser: httptools.HttpResponseParser | None = httptools.HttpResponseParser(self)
        self._chunks: list[bytes] = []
        self._buffered = 0
        self._waiter: asyncio.Future[None] | None = None
        self._error: HTTPClientError | None = None
        self._decoder: Decoder | None = None
        self._paused = False
        self._read_all = False
        self._until_close = False
        self._informational = False

    # --- the reader's side ---

    async def wait_headers(self) -> None:
        """Return once the status line and headers arrived; raise what broke the exchange first."""
        while not self.headers_received:
            if self._error is not None:
                raise self._error
            await self._wait()

    async def read(self) -> bytes:
        """The whole (decoded) body; flow control is off, since everything is wanted at once."""
        self._read_all = True
        self._resume()
        while not self.complete:
            if self._error is not None:
                raise self._error
            await self._wait()
        return self._take()

    async def read_chunk(self) -> bytes:
        """Everything that arrived since the last call (waiting for something); b"" at the end."""
        while not self._chunks:
            if self.complete:
                return b""
            if self._error is not None:
                raise self._error
            await self._wait()
        data = self._take()
        self._resume()
        return data

    def close(self) -> None:
        """Hand the connection back: to the pool when the answer arrived whole, else closed."""
        if not self._released:
            self._released = True
            self._parser = None  # it refers back to this object: no cycle left for the collector
            reusable = self.complete and self.keep_alive and self._error is None
            self._release(self._connection, reusable)

    def detach(self) -> None:
        """Forget the connection without handing it back: the pool dropped it (for its one retry)."""
        self._released = True
        self._parser = None

    async def _wait(self) -> None:
        waiter = self._loop.create_future()
        self._waiter = waiter
        try:
            await waiter
        finally:
            self._waiter = None

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _take(self) -> bytes:
        chunks = self._chunks
        data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        chunks.clear()
        self._buffered = 0
        return data

    def _resume(self) -> None:
        if self._paused:
            self._paused = False
            self._connection.resume_reading()

    # --- the connection's side ---

    def feed(self, data: bytes) -> None:
        """Bytes from the socket."""
        self.received_any = True
        if self.complete or self._error is not None:
            self.keep_alive = False  # bytes past the answer: the connection is out of step
            return
        parser = self._parser
        if parser is None:  # closed: nobody reads this any more
            return
        try:
            parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(ProtocolError("the server switched protocols (101) without being asked"))
        except httptools.HttpParserError as exc:
            self._malformed(exc)

    def connection_lost(self, exc: BaseException | None) -> None:
        """The connection closed: the end of an until-close body, or a broken answer."""
        if self.complete or self._error is not None:
            return
        if exc is None and self._until_close and self.headers_received:
            self._finish()
            return
        if not self.received_any:
            where = "before sending a response"
        elif not self.headers_received:
            where = "in the middle of the response headers"
        else:
            where = "before the end of the response body"
        cause = f" ({type(exc).__name__}: {exc})" if exc is not None else ""
        self._error = ServerDisconnectedError(
            f"Server disconnected {where}{cause}", before_response=not self.received_any
        )
        self._wake()

    def _malformed(self, exc: httptools.HttpParserError) -> None:
        if self.complete:  # garbage after a whole answer: keep the answer, drop the connection
            self.keep_alive = False
        else:
            self._fail(ProtocolError(f"malformed HTTP response: {type(exc).__name__}: {exc}"))

    def _fail(self, error: HTTPClientError) -> None:
        self._error = error
        self.keep_alive = False
        self._connection.abort()
        self._wake()

    def _finish(self) -> None:
        if self._decoder is not None:
            try:
                tail = self._decoder.flush()
            except zlib.error as exc:
                self._fail(ContentDecodingError(f"corrupt compressed body: {exc}"))
                return
            if tail:
                self._chunks.append(tail)
                self._buffered += len(tail)
        self.complete = True
        self._wake()

    # --- httptools parser callbacks ---

    def on_header(self, name: bytes, value: bytes) -> None:
        key = name.decode("latin-1").lower()
        text = value.decode("latin-1")
        headers = self.headers
        previous = headers.get(key)
        headers[key] = text if previous is None else f"{previous}, {text}"

    def on_headers_complete(self) -> None:
        parser = self._parser
        if parser is None:  # closed while its own parser was calling back: nothing to do
            return
        status = parser.get_status_code()
        if status < _FIRST_FINAL_STATUS:  # 1xx: an interim answer, the real one follows
            self.headers = {}
            self._informational = True
            return
        headers = self.headers
        self.status = status
        self.http_version = parser.get_http_version()
        # an HTTP/1.0 answer is never reused, whatever it says about keep-alive
        self.keep_alive = parser.should_keep_alive() and self.http_version == "1.1"
        self._until_close = (
            "content-length" not in headers
            and "chunked" not in headers.get("transfer-encoding", "").lower()
            and status not in _NO_BODY_STATUSES
        )
        encoding = headers.get("content-encoding")
        if encoding is not None:
            try:
                self._decoder = content_decoder(encoding)
            except ContentDecodingError as exc:
                self._fail(exc)
                return
        self.headers_received = True
        self._wake()

    def on_body(self, body: bytes) -> None:
        if self._error is not None:
            return
        if self._decoder is not None:
            try:
                body = self._decoder.decompress(body)
            except zlib.error as exc:
                self._fail(ContentDecodingError(f"corrupt compressed body: {exc}"))
                return
            if not body:
                return
        self._chunks.append(body)
        self._buffered += len(body)
        if self._buffered > HIGH_WATER and not self._read_all and not self._paused:
            self._paused = True
            self._connection.pause_reading()
        self._wake()

    def on_message_complete(self) -> None:
        if self._informational:
            self._informational = False
            return
        if self._error is None:
            self._finish()
