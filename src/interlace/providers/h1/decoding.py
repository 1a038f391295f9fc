"""Decoding a body's ``Content-Encoding`` (gzip, deflate) incrementally, chunk by chunk.

The client sends no ``Accept-Encoding`` of its own, so an upstream compresses only when a deployment's
headers ask for it; whatever arrives compressed is decoded here, streams included.
"""

from __future__ import annotations

import zlib
from typing import Protocol

from interlace.providers.h1.errors import ContentDecodingError

__all__ = ["Decoder", "content_decoder"]

_GZIP_WBITS = 16 + zlib.MAX_WBITS
_ZLIB_METHOD_DEFLATE = 8
_ZLIB_HEADER_CHECK = 31


class Decoder(Protocol):
    """An incremental decompressor: ``decompress`` each chunk, ``flush`` at the end of the body."""

    def decompress(self, data: bytes) -> bytes: ...

    def flush(self) -> bytes: ...


class _Deflate:
    """``deflate`` as servers send it: zlib-wrapped as the RFC says, or raw deflate as some do."""

    def __init__(self) -> None:
        self._inner: zlib._Decompress | None = None

    def decompress(self, data: bytes) -> bytes:
        if self._inner is None:
            if not data:
                return b""
            wrapped = len(data) >= 2 and (  # noqa: PLR2004 - the two-byte zlib header
                data[0] & 0x0F == _ZLIB_METHOD_DEFLATE and (data[0] << 8 | data[1]) % _ZLIB_HEADER_CHECK == 0
            )
            self._inner = zlib.decompressobj(zlib.MAX_WBITS if wrapped else -zlib.MAX_WBITS)
        return self._inner.decompress(data)

    def flush(self) -> bytes:
        return b"" if self._inner is None else self._inner.flush()


def content_decoder(encoding: str) -> Decoder | None:
    """The decoder for a ``Content-Encoding`` value; None for identity; unsupported ones raise."""
    name = encoding.strip().lower()
    if name in {"", "identity"}:
        return None
    if name in {"gzip", "x-gzip"}:
        return zlib.decompressobj(_GZIP_WBITS)
    if name == "deflate":
        return _Deflate()
    raise ContentDecodingError(f"unsupported Content-Encoding {encoding!r} (gzip and deflate are decoded)")
