"""Crash test: 10,000 messages through NATS JetStream → a ``chat`` step → the Postgres table sink.

``interlace flow run`` runs as a subprocess against a fake OpenAI upstream (the echo model) and a
private nats-server (its own port and store, so the broker can be restarted without touching any other
test). Along the way the flow process is killed with SIGKILL twice and restarted, and the broker is
restarted once while the flow runs. In the end the sink table holds every message exactly once: a
trigger counts every write of a row, and no row was written twice.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import nats
import psycopg
import pytest
from nats.js.api import StorageType, StreamConfig
from tests.support.flows_postgres import DSN, require_postgres, unique
from tests.support.nats_server import NatsServer

from interlace.testing import UpstreamServer

pytestmark = pytest.mark.slow

COUNT = 10_000
STREAM, SUBJECT = "CRASH", "crash.in"


@pytest.fixture
def schema() -> Iterator[str]:
    require_postgres()
    name = unique("flows_crash")
    with psycopg.connect(DSN, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{name}"')
        conn.execute(
            f'CREATE TABLE "{name}".out (n int PRIMARY KEY, text text, answer text, writes int DEFAULT 1)'
        )
        conn.execute(
            f'CREATE FUNCTION "{name}".count_writes() RETURNS trigger AS $$ '
            "BEGIN NEW.writes := OLD.writes + 1; RETURN NEW; END $$ LANGUAGE plpgsql"
        )
        conn.execute(
            f'CREATE TRIGGER count_writes BEFORE UPDATE ON "{name}".out '
            f'FOR EACH ROW EXECUTE FUNCTION "{name}".count_writes()'
        )
    try:
        yield name
    finally:
        with psycopg.connect(DSN, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


def _config(tmp_path: Path, upstream: str, nats_url: str, schema: str) -> Path:
    path = tmp_path / "flows.yaml"
    path.write_text(
        f"""
state:
  dir: {tmp_path / "state"}
observability:
  logs: {{request_log: false}}
models:
  gpt:
    deployments:
      - provider: openai
        model: echo
        base_url: {upstream}/v1
        api_key: ${{UPSTREAM_KEY}}
flows:
  crash:
    max_in_flight: 128
    drain_timeout: 5
    source:
      type: nats
      url: {nats_url}
      stream: {STREAM}
      durable: crash
      ack_wait: 3
      fetch_timeout: 0.2
    steps:
      - type: chat
        model: gpt
        prompt: "Triage: {{{{ text }}}}"
        into: answer
    sink:
      type: postgres
      dsn: {DSN}
      table: {schema}.out
      key: [n]
      columns: [n, text, answer]
      state_schema: {schema}
"""
    )
    return path


async def _publish(url: str) -> None:
    nc = await nats.connect(url)
    js = nc.jetstream()
    await js.add_stream(StreamConfig(name=STREAM, subjects=[SUBJECT], storage=StorageType.FILE))
    for start in range(0, COUNT, 500):
        await asyncio.gather(
            *(
                js.publish(SUBJECT, b'{"n": %d, "text": "ticket %d"}' % (i, i))
                for i in range(start, start + 500)
            )
        )
    await nc.close()


def _rows(schema: str) -> int:
    with psycopg.connect(DSN, autocommit=True) as conn:
        row = conn.execute(f'SELECT count(*) FROM "{schema}".out').fetchone()
        return int(row[0]) if row else 0


def _run_flow(config: Path) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "interlace", "flow", "run", "crash", "--config", str(config)]
    with (config.parent / "flow.log").open("ab") as log:  # a file, not a pipe: a full pipe would stall it
        return subprocess.Popen(
            command, env={**os.environ, "UPSTREAM_KEY": "sk-test"}, stdout=log, stderr=log
        )


def _wait_rows(schema: str, at_least: int, flow: subprocess.Popen[bytes], deadline: float, log: Path) -> None:
    while _rows(schema) < at_least:
        if flow.poll() is not None:
            pytest.fail(f"the flow process exited with {flow.returncode}: {log.read_text()[-2000:]}")
        if time.monotonic() > deadline:
            pytest.fail(f"fewer than {at_least} rows after the deadline ({_rows(schema)})")
        time.sleep(0.05)


def test_every_message_is_written_exactly_once_despite_kills_and_a_broker_restart(
    tmp_path: Path, schema: str
) -> None:
    with UpstreamServer("openai") as upstream, NatsServer(tmp_path / "nats") as broker:
        asyncio.run(_publish(broker.url))
        config = _config(tmp_path, upstream.url, broker.url, schema)
        log = tmp_path / "flow.log"
        deadline = time.monotonic() + 110  # a hang guard: it takes ~50 s on 2 busy cores
        flow = _run_flow(config)
        try:
            for threshold in (COUNT // 5, COUNT // 2):
                _wait_rows(schema, threshold, flow, deadline, log)
                flow.send_signal(signal.SIGKILL)  # mid-flight: written rows whose acks never left
                flow.wait()
                flow = _run_flow(config)
            _wait_rows(schema, COUNT * 7 // 10, flow, deadline, log)
            broker.restart()
            _wait_rows(schema, COUNT, flow, deadline, log)
            flow.send_signal(signal.SIGTERM)
            assert flow.wait(timeout=30) == 0
        finally:
            if flow.poll() is None:
                flow.kill()
                flow.wait()

    with psycopg.connect(DSN, autocommit=True) as conn:
        count, distinct, lowest, highest, most_writes = conn.execute(
            f'SELECT count(*), count(DISTINCT n), min(n), max(n), max(writes) FROM "{schema}".out'
        ).fetchone() or (0, 0, 0, 0, 0)
        sample = conn.execute(f'SELECT text, answer FROM "{schema}".out WHERE n = 4242').fetchone()
    assert (count, distinct, lowest, highest) == (COUNT, COUNT, 0, COUNT - 1)
    assert most_writes == 1  # no message was applied twice, though hundreds were redelivered
    assert sample is not None
    assert sample[0] == "ticket 4242"
    assert "ticket 4242" in sample[1]  # the AI step's answer (the echo model repeats the prompt)
