"""The ASGI side of the fake upstreams: one :class:`Exchange` per request, applying its fault.

:class:`UpstreamApp` is the base of every fake upstream (an honest fake of the upstream boundary, see
:mod:`interlace.testing.faults`). It reads the whole body, matches a route, chooses the fault, records
the request, then lets the protocol's handler answer through the :class:`Exchange`, whose response
methods (:meth:`Exchange.respond`, :meth:`Exchange.respond_stream`) apply the fault on the wire.

The apps are plain ASGI callables with no framework in between, so the normal path stays cheap enough
for a benchmark upstream: no task, sleep or log per request unless a fault asks for a delay.

Dropping a connection (``refuse``, ``cut_stream``, server shutdown) aborts the asyncio transport behind
the ASGI ``send``; uvicorn (which :class:`~interlace.testing.server.UpstreamServer` runs) exposes it as
``send.__self__.transport``. Under a server that does not, :meth:`Exchange.abort` raises
:class:`ConnectionAbortedError` and leaves the drop to that server.
"""

from __future__ import annotations

import asyncio
import urllib.parse
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Iterable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Final

import orjson

from interlace.testing.faults import (
    DIRECTIVE_PREFIX,
    NORMAL,
    Fault,
    FaultDirectiveError,
    FaultScript,
    RecordedRequest,
    RequestJournal,
    parse_fault_directive,
)

if TYPE_CHECKING:
    import re

__all__ = [
    "JSON_TYPE",
    "SSE_TYPE",
    "Exchange",
    "Handler",
    "RejectionError",
    "Route",
    "RouteSpec",
    "UpstreamApp",
    "match_route",
    "sse",
]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Handler = Callable[["Exchange"], Awaitable[None]]
#: ``(method, path pattern, handler, is a model request)``; named groups become :attr:`Route.params`.
RouteSpec = tuple[str, "re.Pattern[str]", Handler, bool]
JSON_TYPE: Final = b"application/json"
SSE_TYPE: Final = b"text/event-stream"
_HTML_ERROR: Final = b"<html><body><h1>502 Bad Gateway</h1></body></html>"


def sse(data: Any, event: str | None = None) -> bytes:
    """One server-sent event frame carrying ``data`` as JSON."""
    frame = b"data: " + orjson.dumps(data) + b"\n\n"
    return frame if event is None else b"event: " + event.encode() + b"\n" + frame


class RejectionError(Exception):
    """Raised by a handler before it responds; answered as the protocol's error (400 unless told)."""

    def __init__(self, message: str, *, status: int = 400, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code


@dataclass(frozen=True, slots=True)
class Route:
    """A matched route: the handler, the path's named groups and whether faults apply."""

    handler: Handler
    params: Mapping[str, str]
    #: A model request (chat, embeddings, messages, infer): scripted and directive faults apply.
    operation: bool

    @property
    def model(self) -> str | None:
        """The model named by the path (an Azure deployment, a v2 model), if any."""
        return self.params.get("model")


def match_route(table: Iterable[RouteSpec], method: str, path: str) -> Route | None:
    """The first route of ``table`` whose pattern matches ``path`` in full and whose method matches."""
    for route_method, pattern, handler, operation in table:
        found = pattern.fullmatch(path)
        if found is not None and route_method == method:
            return Route(handler, found.groupdict(), operation)
    return None


class UpstreamApp(ABC):
    """An ASGI app faking one upstream protocol; records every request and applies faults."""

    #: The protocol's name: ``openai``, ``anthropic`` or ``inference_v2``.
    protocol: ClassVar[str]

    def __init__(self, *, default_fault: Fault = NORMAL) -> None:
        #: Applied to model requests that neither the script nor a directive claims.
        self.default_fault = default_fault
        self.script = FaultScript()
        self.journal = RequestJournal()
        self._inflight: set[Exchange] = set()

    @abstractmethod
    def route(self, method: str, path: str) -> Route | None:
        """The route serving ``method path``; ``None`` answers 404."""

    @abstractmethod
    def error_body(self, status: int, code: str | None, message: str | None) -> dict[str, Any]:
        """The protocol's error body for ``status``; ``code`` and ``message`` refine its defaults."""

    def stream_error_frame(self, fault: Fault) -> bytes:
        """The in-stream error event of an ``error_after_first_chunk`` fault."""
        return sse(self.error_body(fault.http_status, fault.code, fault.message))

    def response_headers(self) -> list[tuple[bytes, bytes]]:
        """Headers every response carries (request ids and the like)."""
        return []

    def abort_inflight(self) -> None:
        """Drop every connection with a response in progress; call on the server's loop at shutdown."""
        for exchange in list(self._inflight):
            exchange.interrupt()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        raw = await _read_body(receive)
        method: str = scope["method"]
        path: str = scope["path"]
        route = self.route(method, path)
        body: Any = None
        parsed = True
        if raw:
            try:
                body = orjson.loads(raw)
            except orjson.JSONDecodeError:
                parsed = False
        fault, problem = self._choose_fault(route, body)
        record = RecordedRequest(
            method=method,
            path=path,
            query=_query(scope),
            headers=_headers(scope),
            body=body,
            raw_body=raw,
            fault=fault,
        )
        self.journal.record(record)
        exchange = Exchange(self, record, route, receive, send)
        self._inflight.add(exchange)
        try:
            await self._dispatch(exchange, problem, parsed=parsed)
        except RejectionError as exc:
            await exchange.send_error(exc.status, exc.code, exc.message)
        finally:
            self._inflight.discard(exchange)
            await exchange.finish()

    async def _dispatch(self, exchange: Exchange, problem: str | None, *, parsed: bool) -> None:
        route = exchange.route
        if route is None:
            raise RejectionError(f"Invalid URL ({exchange.record.method} {exchange.record.path})", status=404)
        if problem is not None:
            raise RejectionError(problem)
        if not route.operation:
            await route.handler(exchange)
        elif await exchange.begin():
            if not parsed:
                raise RejectionError("We could not parse the JSON body of your request.")
            await route.handler(exchange)

    def _choose_fault(self, route: Route | None, body: Any) -> tuple[Fault, str | None]:
        if route is None or not route.operation:
            return NORMAL, None
        scripted = self.script.pop()
        if scripted is not None:
            return scripted, None
        for name in (route.model, body.get("model") if isinstance(body, dict) else None):
            if isinstance(name, str) and name.startswith(DIRECTIVE_PREFIX):
                try:
                    return parse_fault_directive(name) or NORMAL, None
                except FaultDirectiveError as exc:
                    return NORMAL, str(exc)
        return self.default_fault, None


class Exchange:
    """One request and its response; :meth:`respond` and :meth:`respond_stream` apply the fault."""

    def __init__(
        self, app: UpstreamApp, record: RecordedRequest, route: Route | None, receive: Receive, send: Send
    ) -> None:
        self.app = app
        self.record = record
        self.route = route
        self.fault = record.fault
        self._receive = receive
        self._send = send
        self._gone = asyncio.Event()  # the client left, or the server drops the connection
        self._watch: asyncio.Task[None] | None = None
        self._ending = False  # from here on a closed connection is our doing, not a client disconnect
        self._dropped = False
        self._events_sent = 0

    @property
    def body(self) -> Any:
        """The parsed JSON body."""
        return self.record.body

    async def begin(self) -> bool:
        """Apply the faults that strike before a response starts; ``True`` to answer normally."""
        fault = self.fault
        if fault.delay > 0 and not await self.pause(fault.delay):
            return False
        if fault.kind == "refuse":
            await self.abort()
            return False
        if fault.kind == "status":
            await self.send_fault_error()
            return False
        return True

    async def send_json(
        self, payload: Any, status: int = 200, headers: Iterable[tuple[bytes, bytes]] = ()
    ) -> None:
        await self.send_bytes(orjson.dumps(payload), status=status, headers=headers)

    async def send_bytes(
        self,
        body: bytes,
        *,
        status: int = 200,
        content_type: bytes = JSON_TYPE,
        headers: Iterable[tuple[bytes, bytes]] = (),
    ) -> None:
        self._ending = True
        await self._start(status, content_type, headers, len(body))
        await self._send({"type": "http.response.body", "body": body})

    async def send_error(self, status: int, code: str | None = None, message: str | None = None) -> None:
        """An error in the protocol's shape (not a fault: the request itself is wrong)."""
        await self.send_json(self.app.error_body(status, code, message), status=status)

    async def send_fault_error(self) -> None:
        fault = self.fault
        retry = [] if fault.retry_after is None else [(b"retry-after", f"{fault.retry_after:g}".encode())]
        await self.send_json(
            self.app.error_body(fault.http_status, fault.code, fault.message), fault.http_status, retry
        )

    async def respond(self, payload: Any) -> None:
        """A successful non-stream JSON response, with the fault applied."""
        kind = self.fault.kind
        if kind == "error_after_first_chunk":
            await self.send_fault_error()
            return
        body = orjson.dumps(payload)
        if kind == "malformed":
            if self.fault.body == "text":
                await self.send_bytes(_HTML_ERROR, content_type=b"text/html")
            else:
                await self.send_bytes(body[: len(body) // 2])
            return
        if kind not in {"cut_stream", "stall_stream"}:
            await self.send_bytes(body)
            return
        half = len(body) // 2
        await self._start(200, JSON_TYPE, (), len(body))
        await self._send({"type": "http.response.body", "body": body[:half], "more_body": True})
        if kind == "cut_stream":
            await self.abort()
        elif await self.pause(self.fault.seconds or 0.0):
            self._ending = True
            await self._send({"type": "http.response.body", "body": body[half:]})

    async def respond_stream(self, events: Sequence[bytes], terminator: bytes | None = None) -> None:
        """A successful SSE response of encoded ``events`` then ``terminator``, with the fault applied."""
        fault = self.fault
        self._start_watch()
        await self._start(200, SSE_TYPE, ((b"cache-control", b"no-cache"),), None)
        if fault.kind == "malformed" and fault.chunks is not None:
            k = fault.chunks
            events = (*events[:k], b'data: {"id": "broken\n\n', *events[k:])
            if await self._events((*events, terminator) if terminator else events):
                await self._end()
            return
        if fault.kind == "malformed":
            first = events[0] if events else b"data: {}\n\n"
            if await self._events((first[: len(first) // 2].rstrip(b"\n") + b"\n\n",)):
                await self._end()
            return
        split = 1 if fault.kind == "error_after_first_chunk" else fault.chunks
        if not await self._events(events[:split]):
            return
        if fault.kind == "cut_stream":
            await self.abort()
            return
        if fault.kind == "error_after_first_chunk":
            if await self._events((self.app.stream_error_frame(fault),)):
                await self._end()
            return
        if fault.kind == "stall_stream" and not await self.pause(fault.seconds or 0.0):
            return
        rest = events[split:] if split is not None else ()
        if await self._events((*rest, terminator) if terminator else rest):
            await self._end()

    async def pause(self, seconds: float) -> bool:
        """Stay silent for ``seconds``; ``False`` as soon as the client leaves (or the server drops us)."""
        if self._gone.is_set():
            return False
        self._start_watch()
        try:
            async with asyncio.timeout(seconds):
                await self._gone.wait()
        except TimeoutError:
            return True
        return False

    async def abort(self) -> None:
        """Drop the connection now, without (the rest of) a response."""
        self._ending = True
        if not self._abort_transport():
            raise ConnectionAbortedError(
                "this ASGI server does not expose its transport to drop the connection"
            )
        self._dropped = True

    def interrupt(self) -> None:
        """The server is shutting down: drop the connection and wake any pause."""
        self._ending = True
        self._dropped = self._abort_transport()
        self._gone.set()

    async def finish(self) -> None:
        """Settle the disconnect watcher once the handler has returned."""
        if self._dropped:
            self._start_watch()  # return only once the server has seen the connection go: no 500, no log
        watch = self._watch
        if watch is None:
            return
        if self._dropped:
            await asyncio.wait({watch}, timeout=1.0)
        if not watch.done():
            watch.cancel()
        await asyncio.wait({watch})
        if not watch.cancelled():
            watch.exception()  # retrieve it: a failed watcher must not warn at shutdown

    async def _events(self, frames: Iterable[bytes]) -> bool:
        interval = self.fault.chunk_interval_ms / 1000
        for frame in frames:
            if interval and self._events_sent and not await self.pause(interval):
                return False
            if self._gone.is_set():
                return False
            await self._send({"type": "http.response.body", "body": frame, "more_body": True})
            self._events_sent += 1
        return not self._gone.is_set()

    async def _end(self) -> None:
        self._ending = True
        await self._send({"type": "http.response.body", "body": b""})

    async def _start(
        self, status: int, content_type: bytes, headers: Iterable[tuple[bytes, bytes]], length: int | None
    ) -> None:
        start = [(b"content-type", content_type), *self.app.response_headers(), *headers]
        if length is not None:
            start.append((b"content-length", b"%d" % length))
        await self._send({"type": "http.response.start", "status": status, "headers": start})

    def _abort_transport(self) -> bool:
        # uvicorn's send is a bound method of its request cycle, which holds the asyncio transport.
        transport = getattr(getattr(self._send, "__self__", None), "transport", None)
        abort = getattr(transport, "abort", None)
        if not callable(abort):
            return False
        abort()
        return True

    def _start_watch(self) -> None:
        if self._watch is None:
            self._watch = asyncio.create_task(self._watch_disconnect())

    async def _watch_disconnect(self) -> None:
        # The body was read in full, so receive() now returns only when the connection ends.
        while (await self._receive())["type"] != "http.disconnect":
            pass
        if not self._ending:
            self.app.journal.mark_disconnected(self.record)
        self._gone.set()


async def _read_body(receive: Receive) -> bytes:
    message = await receive()
    if not message.get("more_body"):
        return bytes(message.get("body", b""))
    parts = [message.get("body", b"")]
    while message.get("more_body"):
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        parts.append(message.get("body", b""))
    return b"".join(parts)


def _headers(scope: Scope) -> dict[str, str]:
    headers: dict[str, str] = {}
    for raw_name, raw_value in scope["headers"]:
        name, value = raw_name.decode("latin-1").lower(), raw_value.decode("latin-1")
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    return headers


def _query(scope: Scope) -> dict[str, str]:
    raw: bytes = scope.get("query_string", b"")
    return dict(urllib.parse.parse_qsl(raw.decode("latin-1"), keep_blank_values=True)) if raw else {}
