"""The pooled upstream HTTP client every HTTP provider shares: deadlines and error translation.

aiohttp exceptions are translated into the Interlace error tree here, once. Deadlines are explicit:
``connect`` (TCP/TLS), ``first_byte`` (request sent → response headers), ``idle`` (silence between
two reads of a streamed body) and ``total`` (the whole attempt). A traced attempt's W3C trace headers
(:mod:`interlace.observability.propagation`) are added to every request it sends.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import aiohttp
import orjson

from interlace.core.errors import (
    InterlaceError,
    StreamInterrupted,
    UpstreamError,
    UpstreamProtocolError,
    UpstreamRateLimited,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from interlace.observability.propagation import UPSTREAM_TRACE_HEADERS

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator, Mapping

    from interlace.config.schema import Timeouts

__all__ = [
    "ErrorMapper",
    "ServerSentEvent",
    "UpstreamClient",
    "UpstreamStream",
    "base_error",
    "parse_retry_after",
    "upstream_message",
]


class ErrorMapper(Protocol):
    """Turns an upstream's non-2xx answer into an Interlace error (protocol-specific)."""

    def __call__(self, status: int, body: bytes, headers: Mapping[str, str]) -> InterlaceError: ...


@dataclass(slots=True, frozen=True)
class ServerSentEvent:
    event: str | None
    data: bytes


class UpstreamClient:
    """One deployment's connection pool and request primitives."""

    def __init__(
        self,
        *,
        name: str,
        base_url: str,
        headers: Mapping[str, str],
        timeouts: Timeouts,
        max_connections: int,
        error_mapper: ErrorMapper,
    ) -> None:
        self.name = name
        self.base_url = base_url.rstrip("/")
        self.timeouts = timeouts
        self._headers = {"content-type": "application/json", **headers}
        self._max_connections = max_connections
        self._map_error = error_mapper
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        connector = aiohttp.TCPConnector(
            limit=self._max_connections,
            limit_per_host=self._max_connections,
            ttl_dns_cache=300,
            enable_cleanup_closed=True,
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            headers=self._headers,
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=self.timeouts.connect),
            json_serialize=lambda obj: orjson.dumps(obj).decode(),
            auto_decompress=True,
            skip_auto_headers=("User-Agent",),
        )

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            msg = f"upstream client '{self.name}' used before start()"
            raise RuntimeError(msg)
        return self._session

    async def request_json(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        deadline: float | None = None,
    ) -> Any:
        """Send a request and return the decoded JSON answer, within the total deadline."""
        deadline = self._deadline(deadline)
        data = orjson.dumps(body) if body is not None else None
        with self._translate("response"):
            async with asyncio.timeout_at(_loop_time(deadline)):
                response = await self._send(method, path, data, params, headers)
                async with response:
                    raw = await response.read()
                    if response.status >= 400:  # noqa: PLR2004
                        raise self._map_error(response.status, raw, response.headers)
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise UpstreamProtocolError(
                f"Deployment '{self.name}' answered with a body that is not JSON "
                f"({len(raw)} bytes, starts {raw[:60]!r})."
            ) from None

    @contextlib.asynccontextmanager
    async def stream(
        self,
        path: str,
        body: Any,
        *,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        deadline: float | None = None,
    ) -> AsyncIterator[UpstreamStream]:
        """Open a streamed POST; yields once the upstream's 2xx headers arrived."""
        deadline = self._deadline(deadline)
        with self._translate("response"):
            async with asyncio.timeout_at(_loop_time(deadline)):
                response = await self._send("POST", path, orjson.dumps(body), params, headers)
            if response.status >= 400:  # noqa: PLR2004
                async with response:
                    raw = await response.read()
                raise self._map_error(response.status, raw, response.headers)
        try:
            yield UpstreamStream(self, response, deadline)
        finally:
            response.close()

    def _deadline(self, request_deadline: float | None) -> float:
        """This attempt's deadline: the deployment's total, shortened by the request's own deadline."""
        own = time.monotonic() + self.timeouts.total
        return own if request_deadline is None else min(own, request_deadline)

    async def _send(
        self,
        method: str,
        path: str,
        data: bytes | None,
        params: Mapping[str, str] | None,
        headers: Mapping[str, str] | None,
    ) -> aiohttp.ClientResponse:
        traced = UPSTREAM_TRACE_HEADERS.get()  # the attempt's traceparent/tracestate, when traced
        if traced is not None:
            headers = {**headers, **traced} if headers else traced
        request = self.session.request(
            method, self.base_url + path, data=data, params=params, headers=headers
        )
        try:
            async with asyncio.timeout(self.timeouts.first_byte):
                return await request
        except TimeoutError:
            raise UpstreamTimeout(
                f"Deployment '{self.name}' sent no response headers within "
                f"first_byte={self.timeouts.first_byte:g}s.",
                code="first_byte_timeout",
            ) from None

    @contextlib.contextmanager
    def _translate(self, phase: str) -> Iterator[None]:
        try:
            yield
        except InterlaceError:
            raise
        except TimeoutError:
            raise UpstreamTimeout(
                f"Deployment '{self.name}' did not finish within total={self.timeouts.total:g}s.",
                code="total_timeout",
            ) from None
        except aiohttp.ClientConnectorError as exc:
            raise UpstreamUnavailable(
                f"Cannot connect to deployment '{self.name}' at {self.base_url}: "
                f"{exc.os_error.strerror or exc}."
            ) from None
        except aiohttp.ServerTimeoutError:
            raise UpstreamTimeout(
                f"Deployment '{self.name}' did not accept a connection within "
                f"connect={self.timeouts.connect:g}s.",
                code="connect_timeout",
            ) from None
        except (aiohttp.ClientError, OSError) as exc:
            error = StreamInterrupted if phase == "stream" else UpstreamUnavailable
            raise error(
                f"Connection to deployment '{self.name}' broke during the {phase}: "
                f"{type(exc).__name__}{f': {exc}' if str(exc) else ''}."
            ) from None


class UpstreamStream:
    """The body of a streamed upstream answer, read under the idle and total deadlines.

    Reads take whatever the socket has (one deadline per read, not per line) and events are split
    from a local buffer, so a burst of events costs one wake-up.
    """

    def __init__(self, client: UpstreamClient, response: aiohttp.ClientResponse, deadline: float) -> None:
        self._client = client
        self.response = response
        self._deadline = deadline

    async def events(self) -> AsyncIterator[ServerSentEvent]:
        """Server-sent events, each yielded as soon as its blank-line terminator arrives."""
        event: str | None = None
        data: list[bytes] = []
        pending = b""
        while True:
            chunk = await self._read()
            if not chunk:
                return
            lines = (pending + chunk).split(b"\n")
            pending = lines.pop()
            for raw in lines:
                line = raw.rstrip(b"\r")
                if not line:
                    if data:
                        yield ServerSentEvent(event, b"\n".join(data))
                    event, data = None, []
                elif line.startswith(b"data:"):
                    data.append(line[6:] if line[5:6] == b" " else line[5:])
                elif line.startswith(b"event:"):
                    event = line[6:].strip().decode()
                # comments (":") and id:/retry: fields carry nothing we use

    async def _read(self) -> bytes:
        client = self._client
        remaining = self._deadline - time.monotonic()
        idle = client.timeouts.idle
        try:
            async with asyncio.timeout(min(idle, remaining)):
                return await self.response.content.readany()
        except TimeoutError:
            if remaining <= idle:
                raise StreamInterrupted(
                    f"Deployment '{client.name}' exceeded total={client.timeouts.total:g}s mid-stream.",
                    code="total_timeout",
                ) from None
            raise StreamInterrupted(
                f"Deployment '{client.name}' went silent for idle={idle:g}s mid-stream.",
                code="idle_timeout",
            ) from None
        except (aiohttp.ClientError, OSError) as exc:
            raise StreamInterrupted(
                f"Connection to deployment '{client.name}' broke during the stream: "
                f"{type(exc).__name__}{f': {exc}' if str(exc) else ''}."
            ) from None


def parse_retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds to wait from ``retry-after-ms`` or ``retry-after`` (seconds or an HTTP date)."""
    millis = headers.get("retry-after-ms")
    if millis:
        with contextlib.suppress(ValueError):
            return max(0.0, float(millis) / 1000)
    value = headers.get("retry-after")
    if not value:
        return None
    with contextlib.suppress(ValueError):
        return max(0.0, float(value))
    with contextlib.suppress(TypeError, ValueError):
        when = email.utils.parsedate_to_datetime(value)
        return max(0.0, when.timestamp() - time.time())
    return None


def upstream_message(body: bytes) -> str:
    """The human message inside an upstream error body, whatever its protocol."""
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body[:200].decode(errors="replace").strip() or "(empty body)"
    if isinstance(parsed, dict):
        error = parsed.get("error", parsed)
        if isinstance(error, dict):
            return str(error.get("message") or error)
        return str(error)
    return str(parsed)


def _loop_time(monotonic_deadline: float) -> float:
    loop = asyncio.get_running_loop()
    return loop.time() + (monotonic_deadline - time.monotonic())


def base_error(name: str, status: int, body: bytes, headers: Mapping[str, str]) -> UpstreamError:
    """Default translation for statuses that mean the same in every protocol (429/401/403/404/5xx)."""
    message = upstream_message(body)
    if status == 429:  # noqa: PLR2004
        return UpstreamRateLimited(
            f"Deployment '{name}' is rate limited: {message}", retry_after=parse_retry_after(headers)
        )
    if status in {401, 403}:
        return UpstreamError(
            f"Deployment '{name}' rejected the gateway's credentials ({status}: {message}) — "
            "check the deployment's api_key.",
            code="upstream_misconfigured",
        )
    if status == 404:  # noqa: PLR2004
        return UpstreamError(
            f"Deployment '{name}' answered 404 ({message}) — check the deployment's base_url and model.",
            code="upstream_misconfigured",
        )
    return UpstreamError(f"Deployment '{name}' failed with {status}: {message}")
