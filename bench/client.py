"""The upstream client alone: aiohttp (as the gateway used it) against the h1 client, side by side.

Starts the fake OpenAI upstream (``python -m interlace.testing.server --protocol openai --loop uvloop``)
on a free 127.0.0.1 port, then, on uvloop in this process, sends small chat completions through

- **aiohttp**: a ``ClientSession`` with the settings the gateway's upstream client had before it moved
  to :mod:`interlace.providers.h1` (``TCPConnector(limit=256, ttl_dns_cache=300,
  enable_cleanup_closed=True)``, ``auto_decompress``, no User-Agent, the deployment's headers on the
  session), under the same deadlines (``asyncio.timeout_at`` total, ``asyncio.timeout`` first byte)
  and with the same JSON decoding and SSE splitting;
- **h1**: :class:`interlace.providers._http.UpstreamClient` as the providers use it,

sequentially (c=1) and with 16 concurrent callers (c=16), plus sequential streamed completions. For
each it reports the CPU this process spent per request (``time.process_time``: the client's cost;
the upstream runs in its own process) and the wall time per request, the median of the repeats, and
h1 ÷ aiohttp. The two clients alternate within each repeat, so machine drift hits both alike.

    .venv/bin/python bench/client.py                  # ~1 minute on 2 cores
    .venv/bin/python bench/client.py --requests 5000 --repeat 5 --streams 500

The upstream is stopped by its PID when the run ends, fails or is interrupted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

import aiohttp
import orjson
import uvloop
from _procs import CHAT_PATH, HOST, BenchError, Processes, chat_body, start_upstream, upstream_argv

from interlace.config.schema import Timeouts
from interlace.providers._http import UpstreamClient, UpstreamStream, base_error

if TYPE_CHECKING:
    from collections.abc import Iterator

CONCURRENCY = 16
HEADERS = {"authorization": "Bearer sk-bench-key-0123456789"}


def _error_mapper(status: int, body: bytes, headers: object) -> Exception:
    return base_error("bench/0", status, body, headers)  # type: ignore[arg-type]


class AiohttpClient:
    """The gateway's former upstream request path, on aiohttp, for comparison."""

    def __init__(self, base_url: str, timeouts: Timeouts) -> None:
        self.base_url = base_url
        self.timeouts = timeouts
        self.name = "bench/0"
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        connector = aiohttp.TCPConnector(
            limit=256, limit_per_host=256, ttl_dns_cache=300, enable_cleanup_closed=True, ssl=True
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            headers={"content-type": "application/json", **HEADERS},
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=self.timeouts.connect),
            json_serialize=lambda obj: orjson.dumps(obj).decode(),
            auto_decompress=True,
            skip_auto_headers=("User-Agent",),
        )

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def _send(self, method: str, path: str, data: bytes) -> aiohttp.ClientResponse:
        assert self._session is not None
        request = self._session.request(method, self.base_url + path, data=data)
        async with asyncio.timeout(self.timeouts.first_byte):
            return await request

    def _deadline(self) -> float:
        loop = asyncio.get_running_loop()
        return loop.time() + self.timeouts.total

    @contextlib.contextmanager
    def _translate(self) -> Iterator[None]:
        """The former error translation's shape (a generator context manager); nothing fails here."""
        try:
            yield
        except TimeoutError:
            raise
        except (aiohttp.ClientError, OSError) as exc:
            raise BenchError(f"{type(exc).__name__}: {exc}") from None

    async def request_json(self, method: str, path: str, body: object) -> object:
        with self._translate():
            async with asyncio.timeout_at(self._deadline()):
                response = await self._send(method, path, orjson.dumps(body))
                async with response:
                    raw = await response.read()
                    if response.status >= 400:
                        raise _error_mapper(response.status, raw, response.headers)
        return orjson.loads(raw)

    @contextlib.asynccontextmanager
    async def stream(self, path: str, body: object):
        deadline = time.monotonic() + self.timeouts.total
        with self._translate():
            async with asyncio.timeout_at(self._deadline()):
                response = await self._send("POST", path, orjson.dumps(body))
        try:
            yield UpstreamStream(self, _ReadAny(response), deadline)  # type: ignore[arg-type]
        finally:
            response.close()


class _ReadAny:
    """An aiohttp response seen through the ``read_chunk()`` that UpstreamStream reads."""

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response

    async def read_chunk(self) -> bytes:
        return await self._response.content.readany()


def _h1_client(base_url: str, timeouts: Timeouts) -> UpstreamClient:
    return UpstreamClient(
        name="bench/0",
        base_url=base_url,
        headers=HEADERS,
        timeouts=timeouts,
        max_connections=256,
        error_mapper=_error_mapper,
    )


async def _chats(client: object, requests: int, concurrency: int) -> tuple[float, float]:
    """CPU and wall seconds for ``requests`` chat completions, ``concurrency`` callers at a time."""
    body = chat_body("echo")
    path = CHAT_PATH.removeprefix("/v1")

    async def caller(count: int) -> None:
        for _ in range(count):
            answer = await client.request_json("POST", path, body)  # type: ignore[attr-defined]
            if not answer.get("choices"):
                raise BenchError(f"unexpected answer: {answer!r}")

    shares = [requests // concurrency + (i < requests % concurrency) for i in range(concurrency)]
    gc.collect()
    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(caller(n) for n in shares))
    return time.process_time() - cpu, time.perf_counter() - wall


async def _streams(client: object, count: int) -> tuple[float, float, int]:
    """CPU and wall seconds for ``count`` sequential streamed completions, and the events seen."""
    body = {**chat_body("echo"), "stream": True}
    path = CHAT_PATH.removeprefix("/v1")
    events = 0
    gc.collect()
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(count):
        async with client.stream(path, body) as stream:  # type: ignore[attr-defined]
            async for _event in stream.events():
                events += 1
    return time.process_time() - cpu, time.perf_counter() - wall, events


async def _measure(port: int, args: argparse.Namespace) -> dict[str, list[float]]:
    base_url = f"http://{HOST}:{port}/v1"
    timeouts = Timeouts(connect=5, first_byte=30, total=60, idle=30)
    clients = {"aiohttp": AiohttpClient(base_url, timeouts), "h1": _h1_client(base_url, timeouts)}
    for client in clients.values():
        await client.start()
    scenarios = {
        "chat c=1": lambda c: _chats(c, args.requests, 1),
        f"chat c={CONCURRENCY}": lambda c: _chats(c, args.requests, CONCURRENCY),
        "stream c=1": lambda c: _streams(c, args.streams),
    }
    per_request = {
        "chat c=1": args.requests,
        f"chat c={CONCURRENCY}": args.requests,
        "stream c=1": args.streams,
    }
    figures: dict[str, list[float]] = {
        f"{scenario} {kind} {name}": []
        for scenario in scenarios
        for kind in ("cpu", "wall")
        for name in clients
    }
    try:
        for client in clients.values():  # warm-up: connections, caches, code paths
            await _chats(client, args.requests // 10 + 1, CONCURRENCY)
            await _streams(client, 5)
        for repeat in range(args.repeat):
            order = list(clients.items()) if repeat % 2 == 0 else list(reversed(clients.items()))
            for scenario, run in scenarios.items():
                for name, client in order:
                    result = await run(client)
                    cpu, wall = result[0], result[1]
                    figures[f"{scenario} cpu {name}"].append(cpu / per_request[scenario] * 1e6)
                    figures[f"{scenario} wall {name}"].append(wall / per_request[scenario] * 1e6)
                    print(
                        f"[{repeat + 1}/{args.repeat}] {scenario:<11} {name:<8} "
                        f"cpu {cpu / per_request[scenario] * 1e6:8.1f} µs/req  "
                        f"wall {wall / per_request[scenario] * 1e6:8.1f} µs/req"
                        + (f"  ({result[2]} events)" if len(result) > 2 else ""),
                        file=sys.stderr,
                    )
    finally:
        for client in clients.values():
            await client.aclose()
    return figures


def _table(figures: dict[str, list[float]], args: argparse.Namespace) -> str:
    rows = [
        (
            f"Upstream client cost, medians of {args.repeat} repeat(s): {args.requests} chat completions "
            f"per chat scenario, {args.streams} streamed completions per stream scenario; µs per request."
        ),
        "",
        "| scenario | aiohttp CPU | h1 CPU | CPU h1 ÷ aiohttp | aiohttp wall | h1 wall | wall h1 ÷ aiohttp |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for scenario in ("chat c=1", f"chat c={CONCURRENCY}", "stream c=1"):
        med = {
            (kind, name): statistics.median(figures[f"{scenario} {kind} {name}"])
            for kind in ("cpu", "wall")
            for name in ("aiohttp", "h1")
        }
        rows.append(
            f"| {scenario} | {med['cpu', 'aiohttp']:.1f} | {med['cpu', 'h1']:.1f} | "
            f"{med['cpu', 'h1'] / med['cpu', 'aiohttp']:.2f}x | {med['wall', 'aiohttp']:.1f} | "
            f"{med['wall', 'h1']:.1f} | {med['wall', 'h1'] / med['wall', 'aiohttp']:.2f}x |"
        )
    return "\n".join(rows)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=3000, help="chat completions per scenario and client")
    parser.add_argument("--streams", type=int, default=300, help="streamed completions per client")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    procs = Processes()
    try:
        with tempfile.TemporaryDirectory(prefix="interlace-bench-client-") as workdir:
            proc, port = start_upstream(procs, Path(workdir), upstream_argv())
            print(f"fake upstream pid {proc.pid} on {HOST}:{port}", file=sys.stderr)
            figures = uvloop.run(_measure(port, args))
            procs.stop(proc)
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    finally:
        procs.stop_all()
    print(_table(figures, args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
