"""The connector pairs that are not brokers: webhook, files, Postgres outbox / CDC / table, HTTP.

Each builder gives a :class:`~tests.support.connector_pairs.Pair` whose ``publish`` feeds the source
the way its producers do and whose ``stored`` reads back what its sink wrote:

- ``webhook`` / ``webhook-postgres`` — events accepted into the flow inbox (what
  ``POST /v1/flows/{name}/events`` does) of a SQLite state database in the test's directory, or of a
  fresh Postgres database (dropped afterwards); the sink is the event log of the same database.
- ``files`` — the files sink (``format: payload``) appends to a file of the watched directory; the
  pair's sink is another files sink (``format: envelope``) read back line by line.
- ``postgres-outbox`` — rows inserted into an outbox table of a fresh schema; the sink is a Postgres
  table (replay guard by id) in the same schema.
- ``postgres-cdc`` — rows inserted into a published table (its own schema, slot and publication, all
  dropped afterwards); the same Postgres table sink.
- ``http`` — sink only: the HTTP sink posting to a small receiver on 127.0.0.1.

Sources whose ids are positions carry the sent id in the payload (``ref``); ``unwrap`` takes it out.
The Postgres table sink writes payload fields as columns keyed by ``ref``, so its pair's sink adds the
message id as ``ref`` first (what a ``map`` step does in a flow).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import orjson
import psycopg
from tests.support.connector_pairs import Builder, Pair
from tests.support.flows_postgres import DSN, connect, drop_slot, require_logical, require_postgres, unique

from interlace.flows.connectors.event_log.config import EventLogSinkConfig
from interlace.flows.connectors.event_log.sink import EventLogSink, read_events
from interlace.flows.connectors.files.config import FilesSinkConfig, FilesSourceConfig
from interlace.flows.connectors.files.sink import FilesSink
from interlace.flows.connectors.files.source import FilesSource
from interlace.flows.connectors.http.config import HttpSinkConfig
from interlace.flows.connectors.http.sink import HttpSink
from interlace.flows.connectors.postgres.cdc import PostgresCdcSource
from interlace.flows.connectors.postgres.config import (
    PostgresCdcConfig,
    PostgresOutboxConfig,
    PostgresSinkConfig,
)
from interlace.flows.connectors.postgres.outbox import PostgresOutboxSource
from interlace.flows.connectors.postgres.sink import PostgresTableSink
from interlace.flows.connectors.webhook.config import WebhookSourceConfig
from interlace.flows.connectors.webhook.inbox import Inbox
from interlace.flows.connectors.webhook.source import WebhookSource
from interlace.flows.message import Message
from interlace.flows.ports import Sink
from interlace.flows.services import FlowServices
from interlace.store.database import Database, default_database_url

__all__ = ["LOCAL"]


def _with_ref(message: Message) -> dict[str, Any]:
    return {**message.payload, "ref": message.id}


def _from_ref(message: Message) -> Message:
    payload = dict(message.payload)
    ref = payload.pop("ref")
    return Message(id=ref, payload=payload, headers=dict(message.headers))


async def _write_with(sink: Sink, messages: Sequence[Message]) -> None:
    await sink.start()
    try:
        await sink.write(messages)
    finally:
        await sink.aclose()


def _no_service() -> None:
    return None


async def _webhook_pair(tmp: Path) -> Pair:
    database = Database(default_database_url(str(tmp / "state")))
    await database.start()
    return _webhook(database, database.aclose)


async def _webhook_postgres_pair(tmp: Path) -> Pair:
    del tmp
    require_postgres()
    name = unique("flows_contract_state")
    async with await connect() as conn:
        await conn.execute(f'CREATE DATABASE "{name}"')
    info = psycopg.conninfo.conninfo_to_dict(DSN)
    host, port, user = info.get("host", "127.0.0.1"), info.get("port", 5432), info.get("user", "postgres")
    database = Database(f"postgresql+asyncpg://{user}@{host}:{port}/{name}")

    async def cleanup() -> None:
        await database.aclose()
        async with await connect() as conn:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    try:
        await database.start()
    except BaseException:
        await cleanup()
        raise
    return _webhook(database, cleanup)


def _webhook(database: Database, cleanup: Callable[[], Awaitable[None]]) -> Pair:
    services = FlowServices(flow="contract", database=database)
    config = WebhookSourceConfig(type="webhook", poll_interval=0.05, lease=30)

    async def publish(messages: Sequence[Message]) -> None:
        inbox = Inbox(database)
        for m in messages:
            await inbox.accept(
                "contract", m.id, m.payload, headers=m.headers, key=m.key, principal="test", tenant=None
            )

    async def stored() -> list[Message]:
        rows = await read_events(database, "contract-out", limit=1000)
        return [Message(id=r["message_id"], payload=r["payload"], headers=r["headers"] or {}) for r in rows]

    return Pair(
        kind="webhook",
        new_source=lambda: WebhookSource(config, services),
        new_sink=lambda: EventLogSink(EventLogSinkConfig(type="event_log", stream="contract-out"), services),
        publish=publish,
        stored=stored,
        dedupes_by_id=True,
        cleanup=cleanup,
    )


async def _files_pair(tmp: Path) -> Pair:
    inbox, out = tmp / "in", tmp / "out" / "sink.jsonl"
    source_config = FilesSourceConfig(type="files", dir=str(inbox), poll_interval=0.05)

    async def publish(messages: Sequence[Message]) -> None:
        sink = FilesSink(FilesSinkConfig(type="files", path=str(inbox / "events.jsonl"), format="payload"))
        await _write_with(sink, [m.derive(_with_ref(m)) for m in messages])

    async def stored() -> list[Message]:
        if not out.exists():
            return []
        lines = [orjson.loads(line) for line in out.read_bytes().splitlines()]
        return [Message(id=e["id"], payload=e["payload"], headers=e["headers"]) for e in lines]

    async def cleanup() -> None:
        return None

    return Pair(
        kind="files",
        new_source=lambda: FilesSource(source_config),
        new_sink=lambda: FilesSink(FilesSinkConfig(type="files", path=str(out))),
        publish=publish,
        stored=stored,
        unwrap=_from_ref,
        producer_ids=False,
        redelivered_after_crash=False,
        redelivered_after_nack=False,
        source_headers=False,
        cleanup=cleanup,
    )


class _RefSink:
    """The Postgres table sink behind the ``map`` a flow would have: the message id becomes ``ref``."""

    def __init__(self, sink: PostgresTableSink) -> None:
        self.sink = sink
        self.name = sink.name

    async def start(self) -> None:
        await self.sink.start()

    async def write(self, messages: Sequence[Message]) -> None:
        await self.sink.write([m.derive(_with_ref(m)) for m in messages])

    async def aclose(self) -> None:
        await self.sink.aclose()


async def _schema_with_out_table() -> str:
    require_postgres()
    schema = unique("flows_contract")
    async with await connect() as conn:
        await conn.execute(f'CREATE SCHEMA "{schema}"')
        await conn.execute(
            f'CREATE TABLE "{schema}".out (seq bigserial, ref text PRIMARY KEY, n int, text text, '
            '"order" int, note text)'
        )
    return schema


def _table_sink(schema: str) -> Sink:
    config = PostgresSinkConfig(dsn=DSN, table=f"{schema}.out", key=["ref"], state_schema=schema)
    return _RefSink(PostgresTableSink(config, FlowServices(flow="contract", part="sink:pg")))


def _table_stored(schema: str) -> Any:
    async def stored() -> list[Message]:
        async with await connect() as conn:
            rows = await (
                await conn.execute(f'SELECT ref, n, text, "order", note FROM "{schema}".out ORDER BY seq')
            ).fetchall()
        names = ("n", "text", "order", "note")
        return [
            Message(id=r[0], payload={k: v for k, v in zip(names, r[1:], strict=True) if v is not None})
            for r in rows
        ]

    return stored


async def _drop_schema(schema: str) -> None:
    async with await connect() as conn:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


async def _outbox_pair(tmp: Path) -> Pair:
    del tmp
    schema = await _schema_with_out_table()
    config = PostgresOutboxConfig(dsn=DSN, table=f"{schema}.outbox", create_table=True, poll_interval=0.05)

    async def publish(messages: Sequence[Message]) -> None:
        async with await connect() as conn:
            for m in messages:
                await conn.execute(
                    f'INSERT INTO "{schema}".outbox (payload, key, headers) VALUES (%s, %s, %s)',
                    (orjson.dumps(_with_ref(m)).decode(), m.key, orjson.dumps(m.headers).decode()),
                )

    return Pair(
        kind="postgres-outbox",
        new_source=lambda: PostgresOutboxSource(config),
        new_sink=lambda: _table_sink(schema),
        publish=publish,
        stored=_table_stored(schema),
        unwrap=_from_ref,
        dedupes_by_id=True,
        producer_ids=False,
        redelivered_after_crash=False,
        redelivered_after_nack=False,
        sink_headers="none",
        cleanup=lambda: _drop_schema(schema),
    )


def _from_row(message: Message) -> Message:
    row = message.payload["new"]
    return Message(id=row["ref"], payload=row["body"], headers=dict(message.headers))


async def _cdc_pair(tmp: Path) -> Pair:
    del tmp
    schema = await _schema_with_out_table()
    slot = unique("flows_contract_slot")
    async with await connect() as conn:
        await require_logical(conn)
        await conn.execute(f'CREATE TABLE "{schema}".t (seq bigserial PRIMARY KEY, ref text, body jsonb)')
    config = PostgresCdcConfig(
        dsn=DSN,
        slot=slot,
        publication=slot,
        tables=[f"{schema}.t"],
        create_publication=True,
        operations=["insert"],
        poll_interval=0.05,
    )

    async def publish(messages: Sequence[Message]) -> None:
        async with await connect() as conn:
            for m in messages:
                await conn.execute(
                    f'INSERT INTO "{schema}".t (ref, body) VALUES (%s, %s)',
                    (m.id, orjson.dumps(m.payload).decode()),
                )

    async def cleanup() -> None:
        await drop_slot(slot)
        await _drop_schema(schema)

    return Pair(
        kind="postgres-cdc",
        new_source=lambda: PostgresCdcSource(config),
        new_sink=lambda: _table_sink(schema),
        publish=publish,
        stored=_table_stored(schema),
        unwrap=_from_row,
        dedupes_by_id=True,
        producer_ids=False,
        redelivered_after_crash=False,
        source_headers=False,
        sink_headers="none",
        cleanup=cleanup,
    )


class _Receiver:
    """A minimal HTTP/1.1 endpoint on 127.0.0.1 keeping every request it answered 204."""

    def __init__(self) -> None:
        self.received: list[Message] = []
        self.server: asyncio.Server | None = None

    async def start(self) -> str:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self.server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}/hook"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")[1:]
                headers = {
                    k.strip().lower(): v.strip()
                    for k, _, v in (line.partition(":") for line in lines if line)
                }
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                self.received.append(
                    Message(id=headers["idempotency-key"], payload=orjson.loads(body), headers=headers)
                )
                writer.write(b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n")
                await writer.drain()
        writer.close()

    async def aclose(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()


async def _http_pair(tmp: Path) -> Pair:
    del tmp
    receiver = _Receiver()
    url = await receiver.start()

    async def stored() -> list[Message]:
        return list(receiver.received)

    return Pair(
        kind="http",
        new_sink=lambda: HttpSink(HttpSinkConfig(type="http", url=url)),
        stored=stored,
        sink_headers="trace",
        cleanup=receiver.aclose,
    )


LOCAL: dict[str, Builder] = {
    "webhook": Builder(_no_service, _webhook_pair),
    "webhook-postgres": Builder(require_postgres, _webhook_postgres_pair),
    "files": Builder(_no_service, _files_pair),
    "postgres-outbox": Builder(require_postgres, _outbox_pair),
    "postgres-cdc": Builder(require_postgres, _cdc_pair),
    "http": Builder(_no_service, _http_pair, frozenset({"sink"})),
}
