"""Where a pool connects: scheme, host, port, TLS context, and what a request line and Host say."""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

if TYPE_CHECKING:
    import ssl

__all__ = ["Origin"]

_DEFAULT_PORTS = MappingProxyType({"http": 80, "https": 443})


@dataclass(frozen=True, slots=True)
class Origin:
    """One upstream's address, parsed once from its base URL.

    ``host`` is what the socket connects to (and the TLS ``server_hostname``), ``host_header`` the
    value of the ``Host`` header (with the port when it is not the scheme's default),
    ``path_prefix`` the base URL's path, which every request path is appended to, and ``query`` the
    base URL's query (sent with every request, before the request's own parameters).
    """

    scheme: str
    host: str
    port: int
    host_header: str
    path_prefix: str
    query: str
    tls: ssl.SSLContext | None

    @classmethod
    def from_url(cls, base_url: str, ssl_context: ssl.SSLContext | None = None) -> Origin:
        """Parse ``http[s]://host[:port][/prefix][?query]``; an ``https`` origin needs ``ssl_context``."""
        parts = urlsplit(base_url)
        scheme = parts.scheme.lower()
        if scheme not in _DEFAULT_PORTS:
            raise ValueError(f"unsupported URL scheme in {base_url!r}: expected http or https")
        if not parts.hostname:
            raise ValueError(f"no host in URL {base_url!r}")
        if scheme == "https" and ssl_context is None:
            raise ValueError(f"an https origin needs a TLS context: {base_url!r}")
        host = parts.hostname
        port = parts.port or _DEFAULT_PORTS[scheme]
        shown = f"[{host}]" if ":" in host else host
        host_header = shown if port == _DEFAULT_PORTS[scheme] else f"{shown}:{port}"
        return cls(
            scheme=scheme,
            host=host,
            port=port,
            host_header=host_header,
            path_prefix=parts.path.rstrip("/"),
            query=parts.query,
            tls=ssl_context if scheme == "https" else None,
        )
