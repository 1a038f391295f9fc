"""Request heads for one origin: the constant header block encoded once, a request is one join.

A deployment's headers (credentials, content type, its own extras) and ``Host`` never change between
requests, so :class:`RequestEncoder` encodes them to bytes when it is built. A request then adds only
its request line, the per-call headers (trace context), ``Content-Length`` and the body.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final
from urllib.parse import quote, urlencode

if TYPE_CHECKING:
    from collections.abc import Mapping

    from interlace.providers.h1.origin import Origin

__all__ = ["RequestEncoder"]

# characters a path may keep as they are (RFC 3986 pchar and "/"), "%" so escapes already made stay
_PATH_SAFE: Final = "/:@!$&'()*+,;=-._~%"
# methods whose request carries a body: sent with Content-Length: 0 when it is empty
_BODY_METHODS: Final = frozenset({"POST", "PUT", "PATCH"})
_TOKEN_PUNCTUATION: Final = frozenset("!#$%&'*+-.^_`|~")
_COMMON_METHODS: Final = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def _is_token(text: str) -> bool:
    return bool(text) and text.isascii() and all(c.isalnum() or c in _TOKEN_PUNCTUATION for c in text)


def _header_line(name: str, value: str) -> bytes:
    if not _is_token(name):
        raise ValueError(f"invalid HTTP header name {name!r}")
    if "\r" in value or "\n" in value:
        raise ValueError(f"HTTP header {name!r} has a line break in its value")
    return f"{name}: {value}\r\n".encode()


class RequestEncoder:
    """Encodes requests to one origin; ``headers`` are sent with every request (validated here)."""

    def __init__(self, origin: Origin, headers: Mapping[str, str]) -> None:
        self._prefix = origin.path_prefix
        self._query = origin.query
        merged = {"host": origin.host_header, "accept": "*/*"}
        names = {"host": "host", "accept": "accept"}  # lower-case name -> the spelling sent
        for name, value in headers.items():
            key = name.lower()
            if key in {"content-length", "transfer-encoding", "connection"}:
                raise ValueError(f"header {name!r} is set by the HTTP client itself")
            merged.pop(names.get(key, key), None)
            merged[name] = value
            names[key] = name
        self._defaults = merged
        self._default_names = frozenset(names)
        self._block = b"".join(_header_line(name, value) for name, value in merged.items())

    def encode(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> bytes:
        """The whole request: request line, headers, ``Content-Length`` and body, as one bytes."""
        if method not in _COMMON_METHODS and (not _is_token(method) or method == "HEAD"):
            # a HEAD answer announces a body it does not send: the parser cannot frame it
            raise ValueError(f"unsupported HTTP method {method!r}")
        if not (path.isascii() and path.isprintable()) or " " in path or "#" in path:
            path = quote(path, safe=_PATH_SAFE)
        target = self._prefix + path
        if params or self._query:
            query = "&".join(q for q in (self._query, urlencode(params) if params else "") if q)
            target += ("&" if "?" in target else "?") + query
        block = self._block if not headers else self._with(headers)
        parts = [f"{method} {target} HTTP/1.1\r\n".encode(), block]
        if body is not None:
            parts.append(b"content-length: %d\r\n\r\n" % len(body))
            parts.append(body)
        elif method in _BODY_METHODS:
            parts.append(b"content-length: 0\r\n\r\n")
        else:
            parts.append(b"\r\n")
        return b"".join(parts)

    def _with(self, headers: Mapping[str, str]) -> bytes:
        """The header block plus per-call headers; one that overrides a default replaces it."""
        if self._default_names.isdisjoint(name.lower() for name in headers):
            return self._block + b"".join(_header_line(name, value) for name, value in headers.items())
        overridden = {name.lower() for name in headers}
        kept = {name: value for name, value in self._defaults.items() if name.lower() not in overridden}
        return b"".join(_header_line(name, value) for name, value in {**kept, **headers}.items())
