"""A lean HTTP/1.1 client for the gateway's upstream calls: asyncio protocols and httptools.

One :class:`ConnectionPool` per upstream origin keeps keep-alive connections (at most
``max_connections``, FIFO waiters beyond), sends requests encoded by a :class:`RequestEncoder` (the
origin's constant headers encoded once), and returns a :class:`Response` whose body is read whole or
as it arrives, with flow control. Plain TCP and TLS (any :class:`ssl.SSLContext`), on uvloop or the
default event loop. It speaks only what an upstream API needs: no redirects, no cookies, no proxies,
no pipelining, no ``HEAD``.

Modules: :mod:`.origin` (where to connect), :mod:`.request` (encoding), :mod:`.connection` (the
protocol), :mod:`.response` (parsing, body, flow control), :mod:`.decoding` (gzip/deflate),
:mod:`.pool` (slots, idle connections, the one retry), :mod:`.errors`.
"""

from interlace.providers.h1.errors import (
    ConnectError,
    ConnectTimeoutError,
    ContentDecodingError,
    HTTPClientError,
    PoolClosedError,
    ProtocolError,
    ServerDisconnectedError,
    TLSCertificateError,
    TLSHandshakeError,
)
from interlace.providers.h1.origin import Origin
from interlace.providers.h1.pool import ConnectionPool
from interlace.providers.h1.request import RequestEncoder
from interlace.providers.h1.response import Response

__all__ = [
    "ConnectError",
    "ConnectTimeoutError",
    "ConnectionPool",
    "ContentDecodingError",
    "HTTPClientError",
    "Origin",
    "PoolClosedError",
    "ProtocolError",
    "RequestEncoder",
    "Response",
    "ServerDisconnectedError",
    "TLSCertificateError",
    "TLSHandshakeError",
]
