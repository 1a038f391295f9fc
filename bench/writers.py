"""What the event log and the audit writer cost per request record, on SQLite and on Postgres.

Each writer (``EventLog``, ``AuditWriter`` with an HMAC key and ``content: hash``, as a production
gateway runs them) is given ``--records`` records built like the gateway builds them (a chat request
with usage, a served deployment, its cost, one attempt, the policies' decisions, the content hashes),
observed and then flushed in batches of ``--batch``. The figure is the process's CPU time
(``time.process_time()``: the event loop's thread and the database driver's threads) per record,
median (and range) of ``--repeat`` runs, after a warm-up batch. For Postgres the server backend's CPU (read
from ``/proc`` when the server runs on this machine) is shown beside it.

    .venv/bin/python bench/writers.py                       # both writers, SQLite and Postgres
    .venv/bin/python bench/writers.py --only sqlite --repeat 9 --writer "event log"
    .venv/bin/python bench/writers.py --sqlite-journal wal    # the SQLite state db in WAL mode first

Postgres: a throwaway database on ``--postgres-url`` (default
``postgresql+asyncpg://postgres@127.0.0.1:5432/postgres``), created and dropped by the script; it is
skipped, with a note, when the server is unreachable.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import statistics
import sys
import tempfile
import time
import uuid
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from interlace.config.schema import Price
from interlace.observability.cost import cost_usd
from interlace.observability.events import EventLog
from interlace.observability.record import AttemptOutcome, RequestRecord, Usage
from interlace.security.audit.chain import content_digest
from interlace.security.audit.writer import AuditWriter
from interlace.store.database import Database, default_database_url

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable

POSTGRES_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
PRICE = Price(input=2.5, output=10, cached_input=1.25)
KEY = os.urandom(32)
PROMPT = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What is 2 + 2?"}]


def gateway_record(index: int) -> RequestRecord:
    """A finished chat completion as ``gateway/recording.py`` records it (``audit.content: hash``)."""
    usage = Usage(prompt_tokens=120 + index % 50, completion_tokens=30 + index % 40, cached_tokens=64)
    record = RequestRecord(
        request_id=os.urandom(16).hex(),
        operation="chat",
        endpoint="/v1/chat/completions",
        started_at=time.time(),
        duration_s=0.180 + (index % 13) / 1000,
        status=200,
        error_code=None,
        trace_id=os.urandom(16).hex(),
        usage=usage,
        confidence=None,
    )
    record.api_key_id = f"key_{index % 20:04d}"
    record.tenant = ("acme", "globex", None)[index % 3]
    record.principal_kind, record.team, record.subject = "key", "platform", None
    record.requested_model = record.served_model = "gpt-4o"
    record.deployment = ("gpt-4o-eu", "gpt-4o-us")[index % 2]
    record.provider, record.upstream_model = "openai", "gpt-4o-2024-08-06"
    record.attempts = 1
    record.attempt_log = [AttemptOutcome("gpt-4o", record.deployment, "ok", record.duration_s - 0.002)]
    record.decisions = ["rate_limits:ok key 600/min", "budgets:ok tenant 100.00 USD/month"]
    record.prompt_sha256 = content_digest(PROMPT)
    record.completion_sha256 = content_digest("2 + 2 = 4.")
    record.cost_usd = cost_usd(usage, PRICE)
    return record


class Writer(Protocol):
    def observe(self, record: RequestRecord) -> None: ...
    async def flush(self) -> None: ...
    async def aclose(self) -> None: ...


WRITERS: dict[str, Callable[[Database, Path, int], Writer]] = {
    "event log": lambda database, spool, batch: EventLog(
        database, spool_dir=spool / "events", batch_size=batch, flush_interval=3600
    ),
    "audit writer": lambda database, spool, batch: AuditWriter(
        database, spool_dir=spool / "audit", key=KEY, batch_size=batch, flush_interval=3600
    ),
}


@dataclass(frozen=True, slots=True)
class Run:
    cpu_us: float
    """Process CPU per record."""
    wall_us: float
    server_us: float | None
    """The Postgres backends' CPU per record (None: not readable)."""


@asynccontextmanager
async def sqlite_database(directory: Path, journal: str | None = None) -> AsyncIterator[Database]:
    database = Database(default_database_url(str(directory / "state")))
    await database.start()
    if journal is not None:
        async with database.engine.connect() as connection:
            await connection.exec_driver_sql(f"PRAGMA journal_mode={journal}")
    try:
        yield database
    finally:
        await database.aclose()


@asynccontextmanager
async def postgres_database(admin_url: str) -> AsyncIterator[Database]:
    name = f"interlace_bench_{uuid.uuid4().hex[:12]}"
    admin = create_async_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as connection:
            await connection.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            database = Database(make_url(admin_url).set(database=name).render_as_string(hide_password=False))
            await database.start()
            try:
                yield database
            finally:
                await database.aclose()
        finally:
            async with admin.connect() as connection:
                await connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        await admin.dispose()


async def backend_cpu(database: Database) -> float | None:
    """CPU seconds used so far by the Postgres backends serving this database (None: unreadable)."""
    if database.engine.dialect.name != "postgresql":
        return None
    async with database.engine.connect() as connection:
        pids = (
            await connection.execute(
                text("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")
            )
        ).scalars()
        ticks = os.sysconf("SC_CLK_TCK")
        total = 0.0
        for pid in pids:
            try:
                fields = _proc_stat(pid)
            except OSError:
                return None
            total += (int(fields[11]) + int(fields[12])) / ticks  # utime, stime
    return total


def _proc_stat(pid: int) -> list[str]:
    """The fields of ``/proc/PID/stat`` after the command name."""
    with open(f"/proc/{pid}/stat") as stat:  # noqa: PTH123 - a tiny procfs read
        return stat.read().rsplit(")", 1)[1].split()


async def measure(writer: Writer, database: Database, records: list[RequestRecord]) -> Run:
    server_before = await backend_cpu(database)
    wall, cpu = time.perf_counter(), time.process_time()
    for record in records:
        writer.observe(record)
    await writer.flush()
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    server_after = await backend_cpu(database)
    server = None if server_before is None or server_after is None else server_after - server_before
    count = len(records)
    return Run(cpu / count * 1e6, wall / count * 1e6, None if server is None else server / count * 1e6)


async def bench_writer(
    name: str, database: Database, spool: Path, *, records: int, batch: int, repeat: int
) -> list[Run]:
    writer = WRITERS[name](database, spool, batch)
    try:
        await measure(writer, database, [gateway_record(i) for i in range(batch)])  # warm-up
        runs = []
        for _ in range(repeat):
            built = [gateway_record(i) for i in range(records)]
            gc.collect()  # not the previous run's garbage
            runs.append(await measure(writer, database, built))
        return runs
    finally:
        await writer.aclose()


def report(kind: str, name: str, runs: list[Run]) -> str:
    cpu = [run.cpu_us for run in runs]
    server = [run.server_us for run in runs if run.server_us is not None]
    server_text = f"{statistics.median(server):8.1f}" if server else "       —"
    return (
        f"| {kind:8} | {name:12} | {statistics.median(cpu):8.1f} | {min(cpu):8.1f} … {max(cpu):8.1f} "
        f"| {statistics.median(run.wall_us for run in runs):8.1f} | {server_text} |"
    )


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--records", type=int, default=5000)
    parser.add_argument("--batch", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--only", choices=["sqlite", "postgres"])
    parser.add_argument("--writer", choices=sorted(WRITERS))
    parser.add_argument("--postgres-url", default=POSTGRES_URL)
    parser.add_argument("--sqlite-journal", help="set this journal mode first (e.g. wal)")
    args = parser.parse_args()
    kinds = [args.only] if args.only else ["sqlite", "postgres"]
    names = [args.writer] if args.writer else list(WRITERS)
    print(f"{args.records} records a run, batches of {args.batch}, median of {args.repeat} runs; µs a record")
    print("| database | writer       | CPU      | CPU min … max         | wall     | server   |")
    print("|----------|--------------|---------:|----------------------:|---------:|---------:|")
    for kind in kinds:
        for name in names:
            with tempfile.TemporaryDirectory(prefix="interlace-bench-") as scratch:
                directory = Path(scratch)
                try:
                    opened = (
                        sqlite_database(directory, args.sqlite_journal)
                        if kind == "sqlite"
                        else postgres_database(args.postgres_url)
                    )
                    async with opened as database:
                        runs = await bench_writer(
                            name,
                            database,
                            directory / "spool",
                            records=args.records,
                            batch=args.batch,
                            repeat=args.repeat,
                        )
                except OSError as exc:
                    print(f"| {kind:8} | {name:12} | skipped: {exc} |")
                    continue
                print(report(kind, name, runs), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
