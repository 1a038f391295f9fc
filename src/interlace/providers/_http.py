"""The pooled upstream HTTP client every HTTP provider shares: deadlines and error translation.

Requests go over the lean HTTP/1.1 client in :mod:`interlace.providers.h1` (one keep-alive pool per
deployment, at most ``max_connections`` open); its exceptions are translated into the Interlace error
tree here, once. Deadlines are explicit:
``connect`` (TCP/TLS), ``first_byte`` (request sent → response headers), ``idle`` (silence between
two reads of a streamed body) and ``total`` (the whole attempt). A traced attempt's W3C trace headers
(:mod:`interlace.observability.propagation`) are added to every request it sends.

TLS is explicit: an ``https`` upstream's certificate and host name are verified against the system
trust store plus the deployment's ``tls.ca_file``, and ``tls.client_cert_file`` is presented when the
upstream asks for one (mTLS); only a deployment's own ``tls.verify: false`` turns checking off. A
failed verification or handshake is a 502 that says so (``upstream_tls_error``).

An upstream may echo the credential it was sent in its error message (``Incorrect API key provided:
sk-…``): the deployment's own credentials are redacted from every error translated here — and from
the errors a provider raises while reading a stream (an in-stream error event) — so they reach
neither the client nor the logs.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import errno
import ssl
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import orjson

from interlace.core.errors import (
    ConfigError,
    InterlaceError,
    StreamInterrupted,
    UpstreamError,
    UpstreamProtocolError,
    UpstreamRateLimited,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from interlace.observability.propagation import UPSTREAM_TRACE_HEADERS
from interlace.providers.h1 import (
    ConnectError,
    ConnectionPool,
    ConnectTimeoutError,
    HTTPClientError,
    Origin,
    ProtocolError,
    RequestEncoder,
    ServerDisconnectedError,
    TLSCertificateError,
    TLSHandshakeError,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator, Mapping

    from interlace.config.schema import Timeouts
    from interlace.config.tls import UpstreamTLSConfig
    from interlace.providers.h1 import Response

__all__ = [
    "ErrorMapper",
    "ServerSentEvent",
    "UpstreamClient",
    "UpstreamStream",
    "base_error",
    "parse_retry_after",
    "upstream_message",
    "upstream_ssl_context",
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
        tls: UpstreamTLSConfig | None = None,
    ) -> None:
        self.name = name
        self.base_url = base_url.rstrip("/")
        https = self.base_url.startswith("https:")
        # built now, so an unreadable certificate or key is a configuration error, not a failed request
        self._presents_no_certificate = https and (tls is None or tls.client_cert_file is None)
        context: ssl.SSLContext | None = None
        if https:
            context = (
                upstream_ssl_context(tls, name=name) if tls is not None else ssl.create_default_context()
            )
        self.timeouts = timeouts
        self._headers = {"content-type": "application/json", **headers}
        self._secrets = _credentials(self._headers)
        try:
            self._origin = Origin.from_url(self.base_url, context)
            # the deployment's constant headers (and Host) are encoded once, here
            self._encoder = RequestEncoder(self._origin, self._headers)
        except ValueError as exc:
            raise ConfigError(f"deployment '{name}': {exc}") from None
        self._max_connections = max_connections
        self._map_error = error_mapper
        self._pool: ConnectionPool | None = None

    async def start(self) -> None:
        self._pool = ConnectionPool(
            self._origin,
            max_connections=self._max_connections,
            connect_timeout=self.timeouts.connect,
            keep_alive=KEEP_ALIVE_SECONDS,
        )

    async def aclose(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.aclose()

    @property
    def pool(self) -> ConnectionPool:
        if self._pool is None:
            msg = f"upstream client '{self.name}' used before start()"
            raise RuntimeError(msg)
        return self._pool

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
                try:
                    raw = await response.read()
                finally:
                    response.close()
            if response.status >= 400:  # noqa: PLR2004
                raise self._redact(self._map_error(response.status, raw, response.headers))
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise self._redact(
                UpstreamProtocolError(
                    f"Deployment '{self.name}' answered with a body that is not JSON "
                    f"({len(raw)} bytes, starts {raw[:60]!r})."
                )
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
                    try:
                        raw = await response.read()
                    finally:
                        response.close()
                    raise self._redact(self._map_error(response.status, raw, response.headers))
        try:
            yield UpstreamStream(self, response, deadline)
        except InterlaceError as error:  # a provider's mid-stream error quotes the upstream's event
            redacted = self._redact(error)
            if redacted is error:
                raise
            raise redacted from None
        finally:
            response.close()

    def _redact(self, error: InterlaceError) -> InterlaceError:
        """``error`` without the deployment's credentials in its message (an upstream may echo them)."""
        message = error.message
        for secret in self._secrets:
            message = message.replace(secret, "[redacted]")
        return error if message == error.message else error.with_message(message)

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
    ) -> Response:
        traced = UPSTREAM_TRACE_HEADERS.get()  # the attempt's traceparent/tracestate, when traced
        if traced is not None:
            headers = {**headers, **traced} if headers else traced
        request = self._encoder.encode(method, path, data, params, headers)
        pool = self.pool
        try:
            async with asyncio.timeout(self.timeouts.first_byte):
                return await pool.send(request)
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
        except TLSCertificateError as exc:
            raise UpstreamUnavailable(
                f"TLS verification of deployment '{self.name}' at {self.base_url} failed: "
                f"{exc.certificate_error} — trust its CA with the deployment's tls.ca_file.",
                code="upstream_tls_error",
            ) from None
        except TLSHandshakeError as exc:
            raise UpstreamUnavailable(
                f"TLS handshake with deployment '{self.name}' at {self.base_url} failed: "
                f"{exc.os_error} — check the deployment's tls settings.",
                code="upstream_tls_error",
            ) from None
        except ConnectError as exc:
            raise UpstreamUnavailable(
                f"Cannot connect to deployment '{self.name}' at {self.base_url}: "
                f"{exc.os_error.strerror or exc}."
            ) from None
        except ConnectTimeoutError:
            raise UpstreamTimeout(
                f"Deployment '{self.name}' did not accept a connection within "
                f"connect={self.timeouts.connect:g}s.",
                code="connect_timeout",
            ) from None
        except ProtocolError as exc:
            if phase == "stream":
                raise StreamInterrupted(self._broke(phase, exc)) from None
            raise UpstreamProtocolError(
                f"Deployment '{self.name}' answered with a malformed HTTP response: {exc}."
            ) from None
        except (HTTPClientError, OSError) as exc:
            error = StreamInterrupted if phase == "stream" else UpstreamUnavailable
            raise error(self._broke(phase, exc) + self._tls_hint(exc)) from None

    def _broke(self, phase: str, exc: BaseException) -> str:
        return (
            f"Connection to deployment '{self.name}' broke during the {phase}: "
            f"{type(exc).__name__}{f': {exc}' if str(exc) else ''}."
        )

    def _tls_hint(self, exc: BaseException) -> str:
        # TLS 1.3 servers refuse a missing client certificate after the handshake: the client only
        # sees the connection closed or reset before any answer, so say what the likely cause is
        closed = (isinstance(exc, ServerDisconnectedError) and exc.before_response) or (
            isinstance(exc, OSError) and exc.errno == errno.ECONNRESET
        )
        if closed and self._presents_no_certificate:
            return (
                " The upstream closed the TLS connection before answering: if it requires a client "
                "certificate, set the deployment's tls.client_cert_file."
            )
        return ""


class UpstreamStream:
    """The body of a streamed upstream answer, read under the idle and total deadlines.

    Reads take whatever the socket has (one deadline per read, not per line) and events are split
    from a local buffer, so a burst of events costs one wake-up.
    """

    def __init__(self, client: UpstreamClient, response: Response, deadline: float) -> None:
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
                return await self.response.read_chunk()
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
        except (HTTPClientError, OSError) as exc:
            raise StreamInterrupted(client._broke("stream", exc)) from None  # noqa: SLF001


def upstream_ssl_context(tls: UpstreamTLSConfig, *, name: str) -> ssl.SSLContext:
    """The TLS context for one deployment: verifying (system store + ``ca_file``), with its client cert."""
    context = ssl.create_default_context()
    try:
        if tls.ca_file is not None:
            context.load_verify_locations(cafile=tls.ca_file)
        if tls.client_cert_file is not None:
            context.load_cert_chain(tls.client_cert_file, tls.client_key_file)
    except (ssl.SSLError, OSError) as exc:
        files = ", ".join(f for f in (tls.ca_file, tls.client_cert_file, tls.client_key_file) if f)
        raise ConfigError(
            f"deployment '{name}': cannot load its TLS files ({files}): {exc} — they must be PEM "
            "certificates and an unencrypted PEM key that matches the certificate"
        ) from None
    if not tls.verify:  # this deployment only: its operator said so explicitly
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


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


#: How long an unused upstream connection is kept open (servers close theirs sooner or later:
#: uvicorn after 5 s; the pool handles that race, see :mod:`interlace.providers.h1.pool`).
KEEP_ALIVE_SECONDS = 15.0
_CREDENTIAL_HEADERS = frozenset({"authorization", "api-key", "x-api-key", "proxy-authorization"})
_SHORTEST_SECRET = 8  # shorter values would redact ordinary words


def _credentials(headers: Mapping[str, str]) -> tuple[str, ...]:
    """The secret values among a deployment's headers (a bearer token without its scheme too)."""
    found: set[str] = set()
    for name, value in headers.items():
        if name.lower() in _CREDENTIAL_HEADERS or "key" in name.lower() or "token" in name.lower():
            found.add(value.strip())
            found.add(value.strip().partition(" ")[2].strip())
    return tuple(sorted((v for v in found if len(v) >= _SHORTEST_SECRET), key=len, reverse=True))


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
