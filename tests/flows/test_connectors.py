"""F1's connectors against the real thing: files on disk, an HTTP endpoint on 127.0.0.1, the state
database's event log."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import orjson
import pytest

from interlace.config._flow_parts import RetryPolicy
from interlace.core.errors import MessageRejected, UpstreamUnavailable
from interlace.flows.connectors.event_log.config import EventLogSinkConfig
from interlace.flows.connectors.event_log.sink import EventLogSink, count_events, read_events
from interlace.flows.connectors.files.config import FilesSinkConfig, FilesSourceConfig
from interlace.flows.connectors.files.sink import FilesSink
from interlace.flows.connectors.files.source import FilesSource
from interlace.flows.connectors.http.config import HttpSinkConfig
from interlace.flows.connectors.http.sink import HttpSink
from interlace.flows.engine import FlowEngine
from interlace.flows.message import Delivery, Message
from interlace.flows.services import FlowServices
from interlace.flows.testing import MemorySink
from interlace.store.database import Database, default_database_url


def message(ident: str, payload: Any, **headers: str) -> Message:
    return Message(id=ident, payload=payload, key="k", headers=dict(headers), source="test", position=ident)


# --- files sink ---


async def test_files_sink_appends_json_lines_and_envelopes(tmp_path: Path) -> None:
    path = tmp_path / "out" / "sink.jsonl"
    sink = FilesSink(FilesSinkConfig(type="files", path=str(path)))
    await sink.start()
    await sink.write([message("a", {"n": 1}, traceparent="00-x"), message("b", {"n": 2})])
    await sink.write([message("c", [3])])
    lines = [orjson.loads(line) for line in path.read_bytes().splitlines()]
    assert [line["id"] for line in lines] == ["a", "b", "c"]
    assert lines[0]["payload"] == {"n": 1}
    assert lines[0]["headers"] == {"traceparent": "00-x"}
    bare = FilesSink(FilesSinkConfig(type="files", path=str(tmp_path / "bare.jsonl"), format="payload"))
    await bare.start()
    await bare.write([message("a", {"n": 1})])
    assert (tmp_path / "bare.jsonl").read_bytes() == b'{"n":1}\n'


# --- files source ---


async def take(source: FilesSource, count: int, *, max_in_flight: int = 100) -> list[Delivery]:
    out: list[Delivery] = []
    iterator = source.deliveries(max_in_flight=max_in_flight)
    while len(out) < count:
        out.append(await asyncio.wait_for(anext(iterator), 5))
    await iterator.aclose()  # type: ignore[attr-defined]
    return out


def files_source(tmp_path: Path, **options: Any) -> FilesSource:
    return FilesSource(
        FilesSourceConfig(type="files", dir=str(tmp_path / "in"), poll_interval=0.02, **options)
    )


async def test_files_source_reads_lines_in_order_and_resumes_after_a_restart(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.jsonl").write_text('{"n": 1}\n{"n": 2}\nnot json\n{"n": 4}\n{"n": 5, "partial"')
    source = files_source(tmp_path)
    await source.start()
    got = await take(source, 4)
    assert [d.message.payload for d in got] == [{"n": 1}, {"n": 2}, {"data": "not json"}, {"n": 4}]
    assert [d.message.id for d in got] == ["a.jsonl:1", "a.jsonl:2", "a.jsonl:3", "a.jsonl:4"]
    await got[0].ack()
    await got[2].ack()  # past a gap: not yet a stored position
    await got[1].nack()
    await source.aclose()
    assert orjson.loads((tmp_path / "in" / ".interlace-positions.json").read_bytes()) == {"a.jsonl": 1}

    again = files_source(tmp_path)  # a restart: resumes after the last contiguous ack
    await again.start()
    resumed = await take(again, 3)
    assert [d.message.id for d in resumed] == ["a.jsonl:2", "a.jsonl:3", "a.jsonl:4"]
    await again.aclose()


async def test_a_finished_file_is_moved_or_marked(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.jsonl").write_text('{"n": 1}\n')
    (tmp_path / "in" / "b.jsonl").write_text('{"n": 2}\n')
    source = files_source(tmp_path)
    await source.start()
    iterator = source.deliveries(max_in_flight=10)
    first = await anext(iterator)
    await first.ack()
    second = await anext(iterator)
    await second.ack()
    pending = asyncio.ensure_future(anext(iterator))
    for _ in range(100):
        if (tmp_path / "in" / "done" / "b.jsonl").exists():
            break
        await asyncio.sleep(0.02)
    pending.cancel()
    assert sorted(p.name for p in (tmp_path / "in" / "done").iterdir()) == ["a.jsonl", "b.jsonl"]
    assert orjson.loads((tmp_path / "in" / ".interlace-positions.json").read_bytes()) == {}
    await source.aclose()


async def test_files_source_reads_csv_rows_as_objects_with_keys(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "t.csv").write_text('id,text\n1,"hello, world"\n2,bye\n')
    source = files_source(tmp_path, pattern="*.csv", format="csv", key_field="id", done="mark")
    await source.start()
    got = await take(source, 2)
    assert [d.message.payload for d in got] == [
        {"id": "1", "text": "hello, world"},
        {"id": "2", "text": "bye"},
    ]
    assert [d.message.key for d in got] == ["1", "2"]
    assert got[0].message.id == "t.csv:2"
    await source.aclose()


async def test_a_flow_from_files_to_files_delivers_every_line_once(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    lines = "".join(json.dumps({"n": n}) + "\n" for n in range(200))
    (tmp_path / "in" / "big.jsonl").write_text(lines)
    out = tmp_path / "out.jsonl"
    stop = asyncio.Event()
    engine = FlowEngine(
        "files",
        files_source(tmp_path),
        [],
        {"default": FilesSink(FilesSinkConfig(type="files", path=str(out), format="payload", fsync=False))},
        dead_letter=MemorySink(),
        max_in_flight=16,
    )
    running = asyncio.create_task(engine.run(stop))
    while not (tmp_path / "in" / "done" / "big.jsonl").exists():
        await asyncio.sleep(0.02)
    stop.set()
    await running
    assert sorted(orjson.loads(line)["n"] for line in out.read_bytes().splitlines()) == list(range(200))


# --- HTTP endpoint sink (a real server on 127.0.0.1) ---


class _Endpoint:
    def __init__(self) -> None:
        self.requests: list[tuple[dict[str, str], Any]] = []
        self.answers: list[int] = []


@pytest.fixture
def endpoint() -> Iterator[tuple[_Endpoint, str]]:
    state = _Endpoint()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["content-length"]))
            state.requests.append(({k.lower(): v for k, v in self.headers.items()}, orjson.loads(body)))
            status = state.answers.pop(0) if state.answers else 200
            self.send_response(status)
            self.send_header("content-length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state, f"http://127.0.0.1:{server.server_address[1]}/hook"
    finally:
        server.shutdown()
        server.server_close()


def http_sink(url: str, **options: Any) -> HttpSink:
    retry = RetryPolicy(attempts=3, backoff=0.001)
    return HttpSink(HttpSinkConfig(type="http", url=url, retry=retry, headers={"x-team": "ops"}, **options))


async def test_http_sink_posts_each_message_with_its_id_and_trace(endpoint: tuple[_Endpoint, str]) -> None:
    state, url = endpoint
    sink = http_sink(url)
    await sink.start()
    await sink.write([message("a", {"n": 1}, traceparent="00-abc-def-01")])
    await sink.aclose()
    [(headers, body)] = state.requests
    assert body == {"n": 1}
    assert headers["idempotency-key"] == "a"
    assert headers["traceparent"] == "00-abc-def-01"
    assert headers["x-team"] == "ops"


async def test_http_sink_retries_5xx_and_429_then_confirms(endpoint: tuple[_Endpoint, str]) -> None:
    state, url = endpoint
    state.answers = [503, 429]
    sink = http_sink(url, body="envelope")
    await sink.start()
    await sink.write([message("a", {"n": 1})])
    await sink.aclose()
    assert len(state.requests) == 3
    assert state.requests[-1][1]["id"] == "a"


async def test_http_sink_refuses_for_good_on_4xx_and_fails_after_its_retries(
    endpoint: tuple[_Endpoint, str],
) -> None:
    state, url = endpoint
    sink = http_sink(url)
    await sink.start()
    state.answers = [422]
    with pytest.raises(MessageRejected, match="422"):
        await sink.write([message("a", {})])
    assert len(state.requests) == 1
    state.answers = [500, 500, 500]
    with pytest.raises(UpstreamUnavailable, match="500"):
        await sink.write([message("b", {})])
    await sink.aclose()
    closed = http_sink("http://127.0.0.1:9/nothing")
    await closed.start()
    with pytest.raises(UpstreamUnavailable):
        await closed.write([message("c", {})])
    await closed.aclose()


# --- event log sink (the state database) ---


@pytest.fixture
async def database(tmp_path: Path) -> AsyncIterator[Database]:
    db = Database(default_database_url(str(tmp_path)))
    await db.start()
    try:
        yield db
    finally:
        await db.aclose()


async def test_event_log_sink_appends_once_per_message(database: Database) -> None:
    sink = EventLogSink(EventLogSinkConfig(type="event_log"), FlowServices(flow="orders", database=database))
    await sink.start()
    await sink.write([message("a", {"n": 1}, traceparent="00-t"), message("b", {"n": 2})])
    await sink.write([message("a", {"n": 1})])  # redelivered: not appended again
    events = await read_events(database, "orders")
    assert [e["message_id"] for e in events] == ["a", "b"]
    assert events[0]["payload"] == {"n": 1}
    assert events[0]["headers"] == {"traceparent": "00-t"}
    assert await count_events(database, "orders") == 2
    other = EventLogSink(
        EventLogSinkConfig(type="event_log", stream="audit"), FlowServices(flow="orders", database=database)
    )
    await other.write([message("a", {})])
    assert await count_events(database, "audit") == 1
