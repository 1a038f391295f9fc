"""A flow process killed with SIGKILL mid-way loses nothing: its leased webhook events come back
when their leases expire, and a restarted process delivers every event (at least once)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest
from tests.conftest import fake_models_yaml

from interlace.flows.connectors.webhook.inbox import Inbox
from interlace.store.database import Database, default_database_url

CONFIG = (
    fake_models_yaml(fake={"latency_ms": 40})
    + """
state: {dir: state}
flows:
  crashy:
    source: {type: webhook, lease: 1, poll_interval: 0.05}
    max_in_flight: 2
    drain_timeout: 5
    steps:
      - {type: chat, model: fake, prompt: "{{ text }}"}
    sink: {type: files, path: out/crashy.jsonl}
"""
)

EVENTS = 30


def start(tmp_path: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "interlace", "flow", "run", "crashy", "--config", "interlace.yaml"],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
    )


def delivered(out: Path) -> list[str]:
    if not out.exists():
        return []
    return [orjson.loads(line)["id"] for line in out.read_bytes().splitlines()]


async def accept_events(tmp_path: Path) -> Database:
    database = Database(default_database_url(str(tmp_path / "state")))
    await database.start()
    inbox = Inbox(database)
    for n in range(EVENTS):
        assert await inbox.accept(
            "crashy", f"ev-{n}", {"text": f"event {n}"}, headers={}, key=None, principal="p", tenant=None
        )
    return database


@pytest.mark.slow
async def test_a_killed_flow_process_loses_nothing(tmp_path: Path) -> None:
    (tmp_path / "interlace.yaml").write_text(CONFIG)
    database = await accept_events(tmp_path)
    out = tmp_path / "out" / "crashy.jsonl"
    try:
        first = start(tmp_path)
        deadline = time.monotonic() + 60
        while len(delivered(out)) < 5:
            assert first.poll() is None, first.communicate()
            assert time.monotonic() < deadline
            await asyncio.sleep(0.02)
        first.send_signal(signal.SIGKILL)  # no drain: its leased events stay leased until they expire
        first.communicate(timeout=30)
        assert len(set(delivered(out))) < EVENTS
        second = start(tmp_path)
        while len(set(delivered(out))) < EVENTS:
            assert second.poll() is None, second.communicate()
            assert time.monotonic() < deadline, f"{len(set(delivered(out)))} of {EVENTS} delivered"
            await asyncio.sleep(0.05)
        while await Inbox(database).pending("crashy") > 0:  # the last acks follow the last writes
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
        second.send_signal(signal.SIGTERM)
        _, err = second.communicate(timeout=60)
        assert second.returncode == 0, err
    finally:
        await database.aclose()
    ids = delivered(out)
    assert sorted(set(ids)) == sorted(f"ev-{n}" for n in range(EVENTS))
    assert len(ids) - EVENTS <= 2  # only what the killed process had in flight may be written twice
