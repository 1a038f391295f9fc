"""What can go wrong on an HTTP/1.1 exchange, as exceptions the upstream client translates.

Each class names one failure the caller treats differently: a connection that could not be opened
(:class:`ConnectError`, :class:`ConnectTimeoutError`, the TLS pair), one the server closed before or
during its answer (:class:`ServerDisconnectedError`), an answer that is not valid HTTP
(:class:`ProtocolError`, :class:`ContentDecodingError`), and a pool that was closed meanwhile.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import ssl

__all__ = [
    "ConnectError",
    "ConnectTimeoutError",
    "ContentDecodingError",
    "HTTPClientError",
    "PoolClosedError",
    "ProtocolError",
    "ServerDisconnectedError",
    "TLSCertificateError",
    "TLSHandshakeError",
]


class HTTPClientError(Exception):
    """Base of every error this client raises."""


class ConnectError(HTTPClientError):
    """The TCP connection could not be opened (refused, unreachable, name not resolved)."""

    def __init__(self, os_error: OSError) -> None:
        super().__init__(str(os_error))
        self.os_error = os_error


class ConnectTimeoutError(HTTPClientError):
    """The TCP connection (and TLS handshake) did not complete within the connect timeout."""


class TLSCertificateError(HTTPClientError):
    """The server's certificate or host name failed verification."""

    def __init__(self, certificate_error: ssl.SSLCertVerificationError) -> None:
        super().__init__(str(certificate_error))
        self.certificate_error = certificate_error


class TLSHandshakeError(HTTPClientError):
    """The TLS handshake failed for another reason (protocol version, alert, bad client certificate)."""

    def __init__(self, os_error: ssl.SSLError) -> None:
        super().__init__(str(os_error))
        self.os_error = os_error


class ServerDisconnectedError(HTTPClientError):
    """The server closed (or reset) the connection before its answer was complete.

    ``before_response`` is true when not a single byte of the answer had arrived: on a reused
    keep-alive connection that is the server's idle close racing the request (see the pool).
    """

    def __init__(self, message: str, *, before_response: bool) -> None:
        super().__init__(message)
        self.before_response = before_response


class ProtocolError(HTTPClientError):
    """The answer is not valid HTTP/1.1 (status line, headers, chunk framing)."""


class ContentDecodingError(ProtocolError):
    """The body's ``Content-Encoding`` is unsupported, or its compressed data is corrupt."""


class PoolClosedError(HTTPClientError):
    """The connection pool was closed while the request waited for, or used, a connection."""
