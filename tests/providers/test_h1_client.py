"""The HTTP/1.1 upstream client (interlace.providers.h1) against raw servers on 127.0.0.1.

Each server here is a few lines of asyncio written for one behaviour: keep-alive, the idle-close race,
chunked and compressed bodies, ``Connection: close``, HTTP/1.0, large and slow bodies, malformed
answers, a full pool, cancellation. Every scenario runs on the default event loop and on uvloop.
"""

from __future__ import annotations

import asyncio
import gzip
import ssl
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Self

import pytest
import uvloop
from tests.support.ports import refusing_port

from interlace.config.schema import Timeouts
from interlace.core.errors import (
    StreamInterrupted,
    UpstreamError,
    UpstreamProtocolError,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from interlace.providers._http import UpstreamClient, base_error
from interlace.providers.h1 import (
    ConnectError,
    ConnectionPool,
    ConnectTimeoutError,
    ContentDecodingError,
    Origin,
    PoolClosedError,
    ProtocolError,
    RequestEncoder,
    Response,
    ServerDisconnectedError,
)
from interlace.providers.h1.response import HIGH_WATER

Scenario = Callable[[], Awaitable[None]]


@pytest.fixture(params=["asyncio", "uvloop"])
def run(request: pytest.FixtureRequest) -> Callable[[Scenario], None]:
    factory = uvloop.new_event_loop if request.param == "uvloop" else asyncio.new_event_loop

    def runner(scenario: Scenario) -> None:
        with asyncio.Runner(loop_factory=factory) as loop_runner:
            loop_runner.run(asyncio.wait_for(scenario(), 20))

    return runner


# --- a raw HTTP server -------------------------------------------------------------------------


@dataclass
class Peer:
    """One accepted connection, as the server's handler sees it."""

    index: int
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    server: RawServer

    async def request(self) -> tuple[str, bytes] | None:
        """The next request's head and body; None when the client closed the connection."""
        try:
            head = await self.reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError):
            return None
        text = head.decode("latin-1")
        length = 0
        for line in text.split("\r\n")[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-length":
                length = int(value)
        body = await self.reader.readexactly(length) if length else b""
        self.server.requests.append((text, body))
        return text, body

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()


Handler = Callable[[Peer], Awaitable[None]]


@dataclass
class RawServer:
    handler: Handler
    connections: int = 0
    closed: int = 0
    requests: list[tuple[str, bytes]] = field(default_factory=list)
    port: int = 0
    _server: asyncio.Server | None = None
    _handlers: set[asyncio.Task[None]] = field(default_factory=set)

    async def __aenter__(self) -> Self:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for task in self._handlers:
            task.cancel()
        await asyncio.gather(*self._handlers, return_exceptions=True)
        await self._server.wait_closed()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = Peer(self.connections, reader, writer, self)
        self.connections += 1
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        try:
            await self.handler(peer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self.closed += 1
            if task.cancelling():  # torn down by __aexit__: no graceful close
                writer.transport.abort()
            else:
                writer.close()
            self._handlers.discard(task)


def answer(body: bytes = b'{"ok": true}', status: int = 200, headers: tuple[str, ...] = ()) -> bytes:
    lines = [f"HTTP/1.1 {status} OK", f"content-length: {len(body)}", *headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def chunked(*parts: bytes) -> bytes:
    return b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts) + b"0\r\n\r\n"


async def echo_forever(peer: Peer) -> None:
    while await peer.request() is not None:
        await peer.send(answer())


async def make_pool(server: RawServer, **kwargs: Any) -> ConnectionPool:
    settings: dict[str, Any] = {"max_connections": 4, "connect_timeout": 2.0, **kwargs}
    return ConnectionPool(Origin.from_url(server.url + "/v1"), **settings)


def encoder(server: RawServer, **headers: str) -> RequestEncoder:
    return RequestEncoder(Origin.from_url(server.url + "/v1"), headers)


async def fetch(pool: ConnectionPool, request: bytes) -> tuple[Response, bytes]:
    response = await pool.send(request)
    try:
        return response, await response.read()
    finally:
        response.close()


def post(server: RawServer, body: bytes = b'{"q": 1}') -> bytes:
    return encoder(server).encode("POST", "/chat/completions", body)


# --- requests on the wire ----------------------------------------------------------------------


def test_request_head_carries_prefix_query_host_defaults_and_length() -> None:
    origin = Origin.from_url("http://upstream.test:8080/base/")
    enc = RequestEncoder(origin, {"Authorization": "Bearer k", "content-type": "application/json"})
    wire = enc.encode("POST", "/x y", b"{}", params={"a": "1 2"}, headers={"traceparent": "00-1"})
    head, _, body = wire.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    assert lines[0] == "POST /base/x%20y?a=1+2 HTTP/1.1"
    assert "host: upstream.test:8080" in lines
    assert "Authorization: Bearer k" in lines
    assert "traceparent: 00-1" in lines
    assert "content-length: 2" in lines
    assert body == b"{}"
    # a GET without a body has no Content-Length; a per-call header replaces a default one
    get = enc.encode("GET", "/models", headers={"authorization": "Bearer other"}).decode()
    assert "content-length" not in get
    assert "Bearer other" in get
    assert "Bearer k" not in get
    assert Origin.from_url("https://[::1]/v1", ssl.create_default_context()).host_header == "[::1]"
    with_query = RequestEncoder(Origin.from_url("http://upstream.test/v1?api-version=1"), {})
    assert with_query.encode("GET", "/m", params={"b": "2"}).startswith(b"GET /v1/m?api-version=1&b=2 ")


def test_header_injection_and_unsupported_methods_are_refused() -> None:
    origin = Origin.from_url("http://upstream.test")
    with pytest.raises(ValueError, match="line break"):
        RequestEncoder(origin, {"x-a": "1\r\nx-b: 2"})
    enc = RequestEncoder(origin, {})
    with pytest.raises(ValueError, match="line break"):
        enc.encode("GET", "/", headers={"tracestate": "a\nb"})
    with pytest.raises(ValueError, match="unsupported HTTP method"):
        enc.encode("HEAD", "/")
    with pytest.raises(ValueError, match="unsupported URL scheme"):
        Origin.from_url("ftp://upstream.test")


# --- keep-alive and the idle-close race ---------------------------------------------------------


def test_keep_alive_reuses_one_connection(run: Callable[[Scenario], None]) -> None:
    async def scenario() -> None:
        async with RawServer(echo_forever) as server:
            pool = await make_pool(server)
            for _ in range(3):
                response, body = await fetch(pool, post(server))
                assert response.status == 200
                assert body == b'{"ok": true}'
                assert response.headers["content-length"] == "12"
            assert server.connections == 1
            assert pool.idle_connections == 1
            head, body = server.requests[0]
            assert head.startswith("POST /v1/chat/completions HTTP/1.1\r\n")
            assert f"host: 127.0.0.1:{server.port}" in head
            assert body == b'{"q": 1}'
            await pool.aclose()
            assert pool.open_connections == 0

    run(scenario)


def test_reused_connection_closed_before_answering_is_retried_once_on_a_new_one(
    run: Callable[[Scenario], None],
) -> None:
    async def close_after_first_answer(peer: Peer) -> None:
        if peer.index > 0:
            await echo_forever(peer)
            return
        await peer.request()
        await peer.send(answer())
        await peer.request()  # the second request crosses the server's idle close: no answer

    async def scenario() -> None:
        async with RawServer(close_after_first_answer) as server:
            pool = await make_pool(server)
            await fetch(pool, post(server))
            _, body = await fetch(pool, post(server))
            assert body == b'{"ok": true}'  # the first answer on the second connection
            assert server.connections == 2
            assert len(server.requests) == 3
            await pool.aclose()

    run(scenario)


def test_only_one_retry_and_never_on_a_new_connection(run: Callable[[Scenario], None]) -> None:
    async def answer_once_then_hang_up(peer: Peer) -> None:
        if peer.index == 0:
            await peer.request()
            await peer.send(answer())
        await peer.request()  # every later request: read, then closed without an answer

    async def scenario() -> None:
        async with RawServer(answer_once_then_hang_up) as server:
            pool = await make_pool(server)
            await fetch(pool, post(server))
            with pytest.raises(ServerDisconnectedError, match="before sending a response") as caught:
                await fetch(pool, post(server))  # reused → retried on a new one, which fails too
            assert caught.value.before_response
            assert server.connections == 2
            with pytest.raises(ServerDisconnectedError):
                await fetch(pool, post(server))  # a new connection: not retried
            assert server.connections == 3
            assert pool.open_connections == 0
            await pool.aclose()

    run(scenario)


def test_idle_connection_closed_by_the_server_is_forgotten(run: Callable[[Scenario], None]) -> None:
    async def one_answer(peer: Peer) -> None:
        await peer.request()
        await peer.send(answer())

    async def scenario() -> None:
        async with RawServer(one_answer) as server:
            pool = await make_pool(server)
            await fetch(pool, post(server))
            for _ in range(100):
                if pool.open_connections == 0:
                    break
                await asyncio.sleep(0.01)
            assert pool.idle_connections == 0
            assert pool.open_connections == 0
            await fetch(pool, post(server))
            assert server.connections == 2
            await pool.aclose()

    run(scenario)


def test_idle_connections_are_closed_after_keep_alive(run: Callable[[Scenario], None]) -> None:
    async def scenario() -> None:
        async with RawServer(echo_forever) as server:
            pool = await make_pool(server, keep_alive=0.1)
            await fetch(pool, post(server))
            assert pool.idle_connections == 1
            await asyncio.sleep(0.4)
            assert pool.idle_connections == 0
            assert pool.open_connections == 0
            assert server.closed == 1
            await pool.aclose()

    run(scenario)


@pytest.mark.parametrize(
    "reply",
    [
        answer(headers=("connection: close",)),
        b"HTTP/1.0 200 OK\r\ncontent-length: 2\r\nconnection: keep-alive\r\n\r\n{}",
    ],
    ids=["connection-close", "http-1.0"],
)
def test_connection_close_and_http_10_are_not_reused(run: Callable[[Scenario], None], reply: bytes) -> None:
    async def reply_and_keep_open(peer: Peer) -> None:
        while await peer.request() is not None:
            await peer.send(reply)

    async def scenario() -> None:
        async with RawServer(reply_and_keep_open) as server:
            pool = await make_pool(server)
            for _ in range(2):
                response, _ = await fetch(pool, post(server))
                assert response.status == 200
                assert not response.keep_alive
            assert server.connections == 2
            assert pool.idle_connections == 0
            await pool.aclose()

    run(scenario)


# --- bodies ------------------------------------------------------------------------------------


def test_chunked_until_close_and_repeated_headers(run: Callable[[Scenario], None]) -> None:
    async def chunks_then_until_close(peer: Peer) -> None:
        await peer.request()
        await peer.send(
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\nx-multi: a\r\nX-Multi: b\r\n\r\n"
            + chunked(b'{"a":', b" 1}")
        )
        await peer.request()
        await peer.send(b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\nuntil the end")

    async def scenario() -> None:
        async with RawServer(chunks_then_until_close) as server:
            pool = await make_pool(server)
            response, body = await fetch(pool, post(server))
            assert body == b'{"a": 1}'
            assert response.headers["x-multi"] == "a, b"
            assert response.keep_alive
            response, body = await fetch(pool, post(server))
            assert body == b"until the end"
            assert server.connections == 1
            await pool.aclose()

    run(scenario)


def test_gzip_and_deflate_bodies_are_decoded(run: Callable[[Scenario], None]) -> None:
    text = b'{"answer": "' + b"compressible " * 500 + b'"}'
    raw_deflate = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    raw = raw_deflate.compress(text) + raw_deflate.flush()
    gzipped = gzip.compress(text)
    bodies = [
        answer(gzipped, headers=("content-encoding: gzip",)),
        b"HTTP/1.1 200 OK\r\ncontent-encoding: gzip\r\ntransfer-encoding: chunked\r\n\r\n"
        + chunked(gzipped[:7], gzipped[7:40], gzipped[40:]),
        answer(zlib.compress(text), headers=("content-encoding: deflate",)),
        answer(raw, headers=("content-encoding: deflate",)),
        answer(b"not gzip at all", headers=("content-encoding: gzip",)),
    ]
    replies = iter(bodies)

    async def compressed(peer: Peer) -> None:
        while await peer.request() is not None:
            await peer.send(next(replies))

    async def scenario() -> None:
        async with RawServer(compressed) as server:
            pool = await make_pool(server, max_connections=1)
            for _ in range(4):
                _, body = await fetch(pool, post(server))
                assert body == text
            with pytest.raises(ContentDecodingError, match="corrupt compressed body"):
                await fetch(pool, post(server))
            assert pool.open_connections == 0  # a corrupt body closes its connection
            assert server.connections == 1
            await pool.aclose()

    run(scenario)

    async def unsupported(peer: Peer) -> None:
        await peer.request()
        await peer.send(answer(b"x", headers=("content-encoding: br",)))

    async def scenario_unsupported() -> None:
        async with RawServer(unsupported) as server:
            pool = await make_pool(server)
            with pytest.raises(ContentDecodingError, match="unsupported Content-Encoding 'br'"):
                await fetch(pool, post(server))
            await pool.aclose()

    run(scenario_unsupported)


def test_one_mebibyte_body_read_whole(run: Callable[[Scenario], None]) -> None:
    big = bytes(range(256)) * 4096  # 1 MiB

    async def large(peer: Peer) -> None:
        while await peer.request() is not None:
            await peer.send(answer(big))

    async def scenario() -> None:
        async with RawServer(large) as server:
            pool = await make_pool(server)
            for _ in range(2):
                _, body = await fetch(pool, post(server))
                assert body == big
            assert server.connections == 1
            await pool.aclose()

    run(scenario)


def test_streamed_body_is_flow_controlled(run: Callable[[Scenario], None]) -> None:
    part = b"x" * 65536
    parts = 32  # 2 MiB, sent as fast as the socket takes it

    async def flood(peer: Peer) -> None:
        await peer.request()
        await peer.send(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
        for _ in range(parts):
            await peer.send(b"%x\r\n%s\r\n" % (len(part), part))
        await peer.send(b"0\r\n\r\n")
        await echo_forever(peer)

    async def scenario() -> None:
        async with RawServer(flood) as server:
            pool = await make_pool(server)
            response = await pool.send(post(server))
            transport = response._connection.transport
            assert transport is not None
            received = 0
            paused = 0
            while True:
                await asyncio.sleep(0.01)  # a slow reader: the socket must stop being read
                paused += not transport.is_reading()
                assert response._buffered <= HIGH_WATER + 256 * 1024  # + at most one socket read
                chunk = await response.read_chunk()
                if not chunk:
                    break
                received += len(chunk)
            assert received == len(part) * parts
            assert paused > 0
            response.close()
            assert pool.idle_connections == 1  # read to its end: kept
            await fetch(pool, post(server))
            assert server.connections == 1
            await pool.aclose()

    run(scenario)


def test_slow_stream_arrives_chunk_by_chunk_and_an_early_close_drops_the_connection(
    run: Callable[[Scenario], None],
) -> None:
    async def slow(peer: Peer) -> None:
        await peer.request()
        await peer.send(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
        for index in range(3):
            await peer.send(chunked(b"data: %d\n\n" % index)[:-5])  # one chunk, no terminator
            await asyncio.sleep(0.05)
        await asyncio.sleep(5)

    async def scenario() -> None:
        async with RawServer(slow) as server:
            pool = await make_pool(server)
            response = await pool.send(post(server))
            seen = [await response.read_chunk() for _ in range(3)]
            assert seen == [b"data: 0\n\n", b"data: 1\n\n", b"data: 2\n\n"]
            response.close()  # abandoned mid-body: closed, not reused
            assert pool.idle_connections == 0
            assert pool.open_connections == 0
            await pool.aclose()

    run(scenario)


# --- broken answers ------------------------------------------------------------------------------


def test_malformed_status_line_is_a_protocol_error(run: Callable[[Scenario], None]) -> None:
    async def garbage(peer: Peer) -> None:
        await peer.request()
        await peer.send(b"HTTP/1.1 OK-ish\r\n\r\n")
        await asyncio.sleep(5)

    async def scenario() -> None:
        async with RawServer(garbage) as server:
            pool = await make_pool(server)
            with pytest.raises(ProtocolError, match="malformed HTTP response"):
                await fetch(pool, post(server))
            assert pool.open_connections == 0
            await pool.aclose()

    run(scenario)


def test_peer_closing_mid_body_is_not_retried(run: Callable[[Scenario], None]) -> None:
    async def half(peer: Peer) -> None:
        while await peer.request() is not None:
            if peer.server.connections == 1 and len(peer.server.requests) == 1:
                await peer.send(answer())
                continue
            await peer.send(answer(b'{"cut": "here"}')[:-5])
            return

    async def scenario() -> None:
        async with RawServer(half) as server:
            pool = await make_pool(server)
            await fetch(pool, post(server))
            with pytest.raises(
                ServerDisconnectedError, match="before the end of the response body"
            ) as caught:
                await fetch(pool, post(server))
            assert not caught.value.before_response
            assert server.connections == 1  # some bytes had arrived: never sent again
            assert pool.open_connections == 0
            await pool.aclose()

    run(scenario)


def test_connection_refused_and_connect_timeout(run: Callable[[Scenario], None]) -> None:
    async def scenario() -> None:
        pool = ConnectionPool(
            Origin.from_url(f"http://127.0.0.1:{closed_port}"), max_connections=1, connect_timeout=2
        )
        with pytest.raises(ConnectError) as caught:
            await pool.send(b"GET / HTTP/1.1\r\n\r\n")
        assert isinstance(caught.value.os_error, OSError)
        assert pool.open_connections == 0

        loop = asyncio.get_running_loop()
        never: asyncio.Future[None] = loop.create_future()

        async def hanging_connect(*_: object, **__: object) -> Any:
            await never

        slow = ConnectionPool(Origin.from_url("http://127.0.0.1:9"), max_connections=1, connect_timeout=0.05)
        slow._loop = _LoopWithConnect(loop, hanging_connect)  # type: ignore[assignment]
        with pytest.raises(ConnectTimeoutError):
            await slow.send(b"GET / HTTP/1.1\r\n\r\n")
        assert slow.open_connections == 0

    with refusing_port() as closed_port:
        run(scenario)


class _LoopWithConnect:
    """The running loop, with ``create_connection`` replaced (a connect that never completes)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, connect: Callable[..., Awaitable[Any]]) -> None:
        self._loop = loop
        self.create_connection = connect

    def __getattr__(self, name: str) -> Any:
        return getattr(self._loop, name)


# --- the pool's limit, cancellation, closing ------------------------------------------------------


def test_pool_limit_queues_waiters_in_order(run: Callable[[Scenario], None]) -> None:
    async def scenario() -> None:
        release = asyncio.Event()

        async def held(peer: Peer) -> None:
            while await peer.request() is not None:
                await release.wait()
                await peer.send(answer())

        async with RawServer(held) as server:
            pool = await make_pool(server, max_connections=2)
            order: list[int] = []

            async def one(index: int) -> None:
                await fetch(pool, post(server, b'{"i": %d}' % index))
                order.append(index)

            tasks = []
            for index in range(5):
                tasks.append(asyncio.create_task(one(index)))
                await asyncio.sleep(0.02)  # a fixed arrival order
            assert pool.open_connections == 2
            assert pool.waiting == 3
            release.set()
            await asyncio.gather(*tasks)
            assert server.connections == 2
            assert [body for _, body in server.requests][2:] == [b'{"i": 2}', b'{"i": 3}', b'{"i": 4}']
            assert pool.open_connections == 2
            assert pool.waiting == 0
            await pool.aclose()

    run(scenario)


def test_cancellation_returns_the_slot(run: Callable[[Scenario], None]) -> None:
    async def scenario() -> None:
        answered = asyncio.Event()

        async def first_never_answers(peer: Peer) -> None:
            while (request := await peer.request()) is not None:
                if peer.index == 0 or b"hang" in request[1]:
                    answered.set()
                    await asyncio.sleep(10)
                    return
                await peer.send(answer())

        async with RawServer(first_never_answers) as server:
            pool = await make_pool(server, max_connections=1)
            hanging = asyncio.create_task(fetch(pool, post(server)))
            await answered.wait()
            waiting = asyncio.create_task(fetch(pool, post(server)))
            await asyncio.sleep(0.02)
            assert pool.waiting == 1
            waiting.cancel()  # a cancelled waiter takes nothing
            hanging.cancel()  # a cancelled exchange closes its connection and frees its slot
            for task in (hanging, waiting):
                with pytest.raises(asyncio.CancelledError):
                    await task
            assert pool.open_connections == 0
            response, _ = await fetch(pool, post(server))
            assert response.status == 200
            assert server.connections == 2
            # cancelled while the headers are awaited under a timeout: same
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.05):
                    await fetch(pool, post(server, b'{"hang": 1}'))
            assert pool.open_connections == 0
            await pool.aclose()

    run(scenario)


def test_aclose_closes_everything_and_fails_waiters(run: Callable[[Scenario], None]) -> None:
    async def scenario() -> None:
        async def silent(peer: Peer) -> None:
            await peer.request()
            await asyncio.sleep(10)

        async with RawServer(silent) as server:
            pool = await make_pool(server, max_connections=1)
            busy = asyncio.create_task(fetch(pool, post(server)))
            await asyncio.sleep(0.05)
            queued = asyncio.create_task(fetch(pool, post(server)))
            await asyncio.sleep(0.02)
            await pool.aclose()
            with pytest.raises(ServerDisconnectedError):
                await busy
            with pytest.raises(PoolClosedError):
                await queued
            assert pool.open_connections == 0
            with pytest.raises(PoolClosedError):
                await pool.send(post(server))

    run(scenario)


# --- through UpstreamClient: the Interlace errors ------------------------------------------------


def client_for(url: str, **timeouts: float) -> UpstreamClient:
    return UpstreamClient(
        name="d/0",
        base_url=url,
        headers={"authorization": "Bearer sk-secret-value"},
        timeouts=Timeouts(**timeouts),
        max_connections=2,
        error_mapper=lambda status, body, headers: base_error("d/0", status, body, headers),
    )


async def drain(events: AsyncIterator[object]) -> None:
    async for _ in events:
        pass


def test_upstream_client_translates_failures(run: Callable[[Scenario], None]) -> None:
    replies = {
        "/v1/ok": answer(b'{"fine": 1}'),
        "/v1/malformed": b"HTTP/1.1 2OO OK\r\n\r\n",
        "/v1/cut": b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n" + chunked(b"data: 1\n\n")[:-5],
        "/v1/teapot": answer(b'{"error": {"message": "no sk-secret-value here"}}', status=500),
    }

    async def by_path(peer: Peer) -> None:
        while (request := await peer.request()) is not None:
            path = request[0].split(" ")[1]
            if path == "/v1/silent":
                await asyncio.sleep(5)
                return
            await peer.send(replies[path])
            if path == "/v1/cut":
                return

    async def scenario() -> None:
        async with RawServer(by_path) as server:
            client = client_for(server.url + "/v1", first_byte=0.2)
            await client.start()
            assert await client.request_json("POST", "/ok", {"a": 1}) == {"fine": 1}
            assert "authorization: Bearer sk-secret-value" in server.requests[0][0]
            with pytest.raises(UpstreamProtocolError, match="malformed HTTP response"):
                await client.request_json("POST", "/malformed", {})
            with pytest.raises(UpstreamTimeout, match=r"first_byte=0\.2s") as timeout:
                await client.request_json("POST", "/silent", {})
            assert timeout.value.code == "first_byte_timeout"
            with pytest.raises(UpstreamError, match=r"failed with 500: no \[redacted\] here"):
                await client.request_json("POST", "/teapot", {})
            async with client.stream("/cut", {}) as stream:
                with pytest.raises(
                    StreamInterrupted, match="broke during the stream: ServerDisconnectedError"
                ):
                    await drain(stream.events())
            await client.aclose()

        refused = client_for(server.url + "/v1")
        await refused.start()
        with pytest.raises(UpstreamUnavailable, match="Cannot connect to deployment 'd/0'"):
            await refused.request_json("GET", "/models")
        await refused.aclose()

    run(scenario)


# --- TLS ---------------------------------------------------------------------------------------


@dataclass
class Tls:
    server: ssl.SSLContext
    server_requiring_a_client_cert: ssl.SSLContext
    ca_file: str
    client_cert: str
    client_key: str


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Tls:
    import trustme  # noqa: PLC0415 - a test dependency only

    root = tmp_path_factory.mktemp("h1-pki")
    ca = trustme.CA()
    server = ca.issue_cert("127.0.0.1")
    client = ca.issue_cert("gateway.client.test")
    ca.cert_pem.write_to_path(str(root / "ca.pem"))
    client.private_key_and_cert_chain_pem.write_to_path(str(root / "client.pem"))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.configure_cert(context)
    mutual = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(root / "ca.pem"))
    mutual.verify_mode = ssl.CERT_REQUIRED
    server.configure_cert(mutual)
    return Tls(context, mutual, str(root / "ca.pem"), str(root / "client.pem"), str(root / "client.pem"))


def tls_client(url: str, **tls: Any) -> UpstreamClient:
    from interlace.config.tls import UpstreamTLSConfig  # noqa: PLC0415

    return UpstreamClient(
        name="d/0",
        base_url=url,
        headers={},
        timeouts=Timeouts(connect=2, first_byte=2, total=5),
        max_connections=2,
        error_mapper=lambda status, body, headers: base_error("d/0", status, body, headers),
        tls=UpstreamTLSConfig(**tls),
    )


async def tls_server(context: ssl.SSLContext) -> tuple[asyncio.Server, str]:
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while await reader.readuntil(b"\r\n\r\n"):
                writer.write(answer())
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
            pass
        finally:
            writer.transport.abort()

    server = await asyncio.start_server(serve, "127.0.0.1", 0, ssl=context)
    return server, f"https://127.0.0.1:{server.sockets[0].getsockname()[1]}/v1"


def test_tls_verification_and_client_certificates(run: Callable[[Scenario], None], tls: Tls) -> None:
    async def scenario() -> None:
        server, url = await tls_server(tls.server)
        trusted = tls_client(url, ca_file=tls.ca_file)
        untrusted = tls_client(url)
        unverified = tls_client(url, verify=False)
        for client in (trusted, untrusted, unverified):
            await client.start()
        assert await trusted.request_json("GET", "/models") == {"ok": True}
        assert await unverified.request_json("GET", "/models") == {"ok": True}
        with pytest.raises(UpstreamUnavailable, match="TLS verification of deployment 'd/0'") as caught:
            await untrusted.request_json("GET", "/models")
        assert caught.value.code == "upstream_tls_error"
        assert "certificate verify failed" in caught.value.message
        for client in (trusted, untrusted, unverified):
            await client.aclose()
        server.close()
        await server.wait_closed()

    run(scenario)

    async def mutual() -> None:
        server, url = await tls_server(tls.server_requiring_a_client_cert)
        with_cert = tls_client(url, ca_file=tls.ca_file, client_cert_file=tls.client_cert)
        without = tls_client(url, ca_file=tls.ca_file)
        for client in (with_cert, without):
            await client.start()
        assert await with_cert.request_json("GET", "/models") == {"ok": True}
        with pytest.raises(UpstreamUnavailable, match=r"set the deployment's tls\.client_cert_file"):
            await without.request_json("GET", "/models")
        for client in (with_cert, without):
            await client.aclose()
        server.close()
        await server.wait_closed()

    run(mutual)
