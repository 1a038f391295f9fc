"""The command line: check prints the resolved table, serve refuses unsafe binds and starts for real."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
from tests.conftest import fake_models_yaml
from typer.testing import CliRunner

from interlace.cli.main import app

EXAMPLE = Path(__file__).parents[2] / "examples" / "interlace.yaml"
EXAMPLE_ENV = {
    "COLUMNS": "300",
    "INTERLACE_MASTER_KEY": "m",
    "OPENAI_API_KEY": "sk-x",
    "AZURE_OPENAI_API_KEY": "az-x",
    "ANTHROPIC_API_KEY": "an-x",
}


def test_check_prints_the_model_table() -> None:
    result = CliRunner().invoke(app, ["check", str(EXAMPLE)], env=EXAMPLE_ENV)
    assert result.exit_code == 0, result.output
    for alias in ("gpt-4o-mini", "gpt-4o-azure", "claude", "fraud-score", "minilm"):
        assert alias in result.output
    assert "sk-x" not in result.output
    assert "master key" in result.output


def test_check_reports_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("models:\n  m:\n    deployments:\n      - provider: openai\n        modle: x\n")
    result = CliRunner().invoke(app, ["check", str(bad)], env={"COLUMNS": "300"})
    assert result.exit_code == 2
    assert f"{bad}:5" in result.output
    assert "did you mean 'model'" in result.output


def test_serve_refuses_public_bind_without_auth(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(fake_models_yaml(echo={}))
    result = subprocess.run(
        [sys.executable, "-m", "interlace", "serve", "--config", str(config), "--host", "0.0.0.0"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.startswith(f"error: {config}: refusing to serve on 0.0.0.0"), result.stderr
    assert "allow_unauthenticated_public_bind" in result.stderr
    assert "master_key" in result.stderr
    assert "Traceback" not in result.stderr


def test_serve_starts_prints_url_and_models_and_stops_on_sigint(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(fake_models_yaml(echo={}) + f"state:\n  dir: {tmp_path / 'state'}\n")
    process = subprocess.Popen(
        [sys.executable, "-m", "interlace", "serve", "--config", str(config), "--port", "0"],
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
    )
    try:
        assert process.stderr is not None
        lines: list[str] = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            line = process.stderr.readline()
            lines.append(line)
            if "listening on" in line:
                break
        banner = "".join(lines)
        assert "listening on http://127.0.0.1:" in banner, banner
        url = banner.split("listening on ")[1].split()[0]
        assert "model echo" in process.stderr.readline()
        for _ in range(100):
            try:
                if httpx.get(f"{url}/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.05)
        reply = httpx.post(
            f"{url}/v1/chat/completions",
            json={"model": "echo", "messages": [{"role": "user", "content": "hi"}]},
        )
        assert reply.json()["choices"][0]["message"]["content"] == "echo: hi"
    finally:
        process.send_signal(signal.SIGINT)
        assert process.stderr is not None
        with process.stderr:  # closed on every path, a failed assertion or a timeout included
            code = process.wait(timeout=20)
            rest = process.stderr.read()
        assert code == 0
        assert "stopped" in rest
