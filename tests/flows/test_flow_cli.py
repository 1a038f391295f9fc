"""``interlace flow list | validate | status | run``."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from interlace.cli.main import app

WIDE = {"COLUMNS": "200"}

CONFIG = """
state: {dir: state}
flows:
  demo:
    source: {type: files, dir: in, poll_interval: 0.05}
    steps:
      - {type: filter, expression: 'payload.n % 2 == 0', name: evens}
      - {type: map, expression: '{"n": n, "half": n / 2}'}
    sink: {type: files, path: out/demo.jsonl, format: payload}
  second:
    source: {type: webhook}
    sinks:
      a: {type: event_log}
      b: {type: http, url: "http://127.0.0.1:9/x"}
"""


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "interlace.yaml"
    path.write_text(CONFIG)
    return path


def test_list_shows_each_flow(config: Path) -> None:
    result = CliRunner().invoke(app, ["flow", "list", "--config", str(config)], env=WIDE)
    assert result.exit_code == 0, result.output
    assert "demo" in result.output
    assert "evens → map-1" in result.output
    assert "a=event_log, b=http" in result.output


def test_validate_builds_every_flow_and_reports_what_is_wrong(config: Path, tmp_path: Path) -> None:
    ok = CliRunner().invoke(app, ["flow", "validate", "--config", str(config)])
    assert ok.exit_code == 0, ok.output
    assert "2 flow(s) valid" in ok.output
    broken = tmp_path / "broken.yaml"
    broken.write_text(
        CONFIG.replace("type: filter, expression: 'payload.n % 2 == 0'", "type: filter, expression: 'n >'")
    )
    bad = CliRunner().invoke(app, ["flow", "validate", "--config", str(broken)])
    assert bad.exit_code == 2
    assert "broken.yaml:7" in bad.output
    assert "CEL" in bad.output
    unknown = tmp_path / "unknown.yaml"
    unknown.write_text(
        "flows:\n  f:\n    source: {type: webhook}\n"
        "    steps: [{type: function, function: nope}]\n    sink: {type: files, path: o}\n"
    )
    missing = CliRunner().invoke(app, ["flow", "validate", "--config", str(unknown)])
    assert missing.exit_code == 2
    assert "nope" in missing.output


def test_status_before_any_run(config: Path) -> None:
    result = CliRunner().invoke(app, ["flow", "status", "--config", str(config)])
    assert result.exit_code == 0, result.output
    assert "no flow has reported yet" in result.output


@pytest.mark.slow
def test_run_processes_drains_on_sigterm_and_status_shows_it(config: Path, tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "numbers.jsonl").write_text("".join(json.dumps({"n": n}) + "\n" for n in range(40)))
    out = tmp_path / "out" / "demo.jsonl"
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "interlace",
            "flow",
            "run",
            "demo",
            "--config",
            str(config),
            "--progress",
            "0.2",
            "--metrics-port",
            str(port),
        ],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
    )
    try:
        deadline = time.monotonic() + 60
        while not (out.exists() and len(out.read_text().splitlines()) == 20):
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "the flow did not write its output"
            time.sleep(0.05)
        while not (tmp_path / "in" / "done" / "numbers.jsonl").exists():
            assert time.monotonic() < deadline, "the finished file was not moved"
            time.sleep(0.05)
        scraped = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
        assert 'interlace_flow_messages_in_total{flow="demo"} 40.0' in scraped
        assert 'interlace_flow_step_messages_total{flow="demo",outcome="ok",step="evens"} 40.0' in scraped
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, err
    assert "demo: stopped · in 40 · out 20 · errors 0 · dead letters 0 · in flight 0" in err
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted(row["n"] for row in rows) == list(range(0, 40, 2))
    status = CliRunner().invoke(app, ["flow", "status", "--config", str(config)], env=WIDE)
    assert status.exit_code == 0, status.output
    assert "demo" in status.output
    assert "stopped" in status.output
    assert " 40 " in status.output
