"""Streamed chat completions over a raw keep-alive HTTP/1.1 connection: first chunk, gaps, total.

A raw asyncio client keeps the client's own cost out of the figures: the clock starts before the
request is written and stops when the first chunk carrying a ``data:`` line arrives (time to first
chunk, TTFC) and when the terminating zero-length chunk arrives (total); the gaps between consecutive
chunks carrying ``data:`` show whether the gateway adds per-event cost or buffers (a buffering gateway
shows one large gap, or none). Requests are sequential and
alternate between the targets, so drift on the machine hits both alike.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time

from _procs import CHAT_PATH, HOST, BenchError

_WORDS = (
    "streaming through the gateway should add as little as possible to the time the first token "
    "takes to arrive and to the time the whole answer takes"
)


def stream_body(model: str) -> bytes:
    body = {"model": model, "stream": True, "messages": [{"role": "user", "content": _WORDS}]}
    return json.dumps(body).encode()


class _Connection:
    def __init__(self, port: int, model: str, key: str | None = None) -> None:
        self.port = port
        body = stream_body(model)
        auth = f"Authorization: Bearer {key}\r\n" if key else ""
        head = (
            f"POST {CHAT_PATH} HTTP/1.1\r\nHost: {HOST}:{port}\r\nContent-Type: application/json\r\n"
            f"Accept: text/event-stream\r\n{auth}Content-Length: {len(body)}\r\n\r\n"
        )
        self.request = head.encode() + body
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self.reader is None or self.writer is None or self.reader.at_eof():
            await self.close()
            self.reader, self.writer = await asyncio.open_connection(HOST, self.port)
        return self.reader, self.writer

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(OSError):
                await self.writer.wait_closed()
        self.reader = self.writer = None

    async def once(self) -> tuple[float, float, int, list[float]]:
        """(seconds to first data chunk, to the end of the body, data events seen, gaps between chunks)."""
        reader, writer = await self._connect()
        began = time.perf_counter()
        writer.write(self.request)
        status_line = await reader.readline()
        if not status_line:
            raise ConnectionResetError("the server closed the keep-alive connection")
        status = int(status_line.split()[1])
        headers: dict[str, str] = {}
        while (line := await reader.readline()) not in {b"\r\n", b""}:
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        if status != 200 or "chunked" not in headers.get("transfer-encoding", ""):
            length = int(headers.get("content-length", "0"))
            raw = await reader.readexactly(length) if length else b""
            raise BenchError(
                f"a streamed chat completion on port {self.port} answered {status}: {raw[:300]!r}"
            )
        first: float | None = None
        last = 0.0
        gaps: list[float] = []
        events = 0
        done = False
        while True:
            size = int((await reader.readline()).split(b";")[0], 16)
            if size == 0:
                await reader.readline()  # the CRLF after the last chunk (no trailers)
                break
            chunk = await reader.readexactly(size + 2)
            if b"data:" in chunk:
                now = time.perf_counter() - began
                if first is None:
                    first = now
                else:
                    gaps.append(now - last)
                last = now
                events += chunk.count(b"data:")
                done = done or b"data: [DONE]" in chunk
        total = time.perf_counter() - began
        if headers.get("connection", "").lower() == "close":
            await self.close()
        if first is None or not done:
            raise BenchError(f"a streamed chat completion on port {self.port} ended without data: [DONE]")
        return first, total, events, gaps


async def _measure(
    targets: dict[str, tuple[int, str, str | None]], count: int, warmup: int
) -> dict[str, dict]:
    conns = {name: _Connection(port, model, key) for name, (port, model, key) in targets.items()}
    samples: dict[str, dict[str, list[float]]] = {
        name: {"ttfc": [], "total": [], "gap": []} for name in targets
    }
    events: dict[str, int] = {}
    failures: dict[str, int] = {}
    last_error: dict[str, str] = {}
    try:
        for index in range(warmup + count):
            for name, conn in conns.items():
                try:
                    try:
                        first, total, seen, gaps = await asyncio.wait_for(conn.once(), 30)
                    except (ConnectionError, asyncio.IncompleteReadError):
                        await conn.close()  # a dropped keep-alive connection: reconnect once
                        first, total, seen, gaps = await asyncio.wait_for(conn.once(), 30)
                except BenchError as exc:  # an error answer: counted and reported, not fatal
                    await conn.close()
                    failures[name] = failures.get(name, 0) + 1
                    last_error[name] = str(exc)[:300]
                    continue
                if index >= warmup:
                    samples[name]["ttfc"].append(first)
                    samples[name]["total"].append(total)
                    samples[name]["gap"].extend(gaps)
                    events[name] = seen
    finally:
        for conn in conns.values():
            await conn.close()
    return {
        name: {
            **samples[name],
            "events": events.get(name, 0),
            "failures": failures.get(name, 0),
            "last_error": last_error.get(name),
        }
        for name in targets
    }


def measure_streaming(
    targets: dict[str, tuple[int, str, str | None]], count: int, warmup: int = 20
) -> dict[str, dict]:
    """Per target ({name: (port, model, key)}): TTFC, total and gap seconds, and data events per answer."""
    try:
        import uvloop  # noqa: PLC0415 - optional: a faster client loop, less jitter

        factory = uvloop.new_event_loop
    except ImportError:
        factory = None
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(_measure(targets, count, warmup))
