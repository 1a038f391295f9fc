"""``interlace serve --workers 2``: two worker processes answer on one port and all stop on SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
from tests.conftest import fake_models_yaml


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_two_workers_serve_one_port_and_stop_cleanly_on_sigterm(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(fake_models_yaml(echo={}) + f"state:\n  dir: {tmp_path / 'state'}\n")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "interlace",
            "serve",
            "--config",
            str(config),
            "--port",
            "0",
            "--workers",
            "2",
        ],
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
    )
    workers: list[int] = []
    try:
        assert process.stderr is not None
        banners: list[str] = []
        deadline = time.monotonic() + 60
        while len(banners) < 2 and time.monotonic() < deadline:
            line = process.stderr.readline()
            if "listening on" in line:
                banners.append(line)
        assert len(banners) == 2, banners
        urls = {b.split("listening on ")[1].split()[0] for b in banners}
        assert len(urls) == 1, banners  # one port, shared
        workers = [int(b.rsplit("worker ", 1)[1].split()[0]) for b in banners]
        assert len(set(workers)) == 2
        assert process.pid not in workers
        url = urls.pop()
        for _ in range(200):
            try:
                if httpx.get(f"{url}/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.05)
        for index in range(8):  # new connections each time: the kernel hands them to either worker
            reply = httpx.post(
                f"{url}/v1/chat/completions",
                json={"model": "echo", "messages": [{"role": "user", "content": f"hi {index}"}]},
            )
            assert reply.json()["choices"][0]["message"]["content"] == f"echo: hi {index}"
        assert all(_alive(pid) for pid in workers)
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=40)
        rest = process.stderr.read() if process.stderr is not None else ""
        if process.stderr is not None:
            process.stderr.close()
    assert code == 0, rest
    assert "stopped" in rest
    assert not any(_alive(pid) for pid in workers)
