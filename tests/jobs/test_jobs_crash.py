"""A worker process killed with SIGKILL mid-job: another worker finishes the job after its lease
expires; the result is stored once and one webhook delivery succeeds, every delivery carrying the
same ``webhook-id``. On SQLite (processes sharing the file) and on Postgres."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from standardwebhooks import Webhook
from tests.conftest import GatewayFactory
from tests.jobs.helpers import Receiver, wait_for

pytestmark = pytest.mark.slow

CONFIG = """
models:
  slow:
    deployments:
      - provider: fake
        model: echo
        options: {{latency_ms: 2000}}
state:
  dir: "{state_dir}"
  database_url: "{url}"
jobs:
  worker: {{enabled: {in_process}, poll_interval: 0.1, concurrency: 2}}
  lease_seconds: 1
  webhooks:
    allow: [127.0.0.1]
    retry_schedule: [0.2, 0.2, 0.2]
"""


class Workers:
    def __init__(self, config: Path, logs: Path) -> None:
        self.config = config
        self.logs = logs
        self.processes: list[subprocess.Popen[bytes]] = []

    def start(self) -> subprocess.Popen[bytes]:
        log = (self.logs / f"worker-{len(self.processes)}.log").open("wb")
        process = subprocess.Popen(
            [sys.executable, "-m", "interlace", "worker", "--config", str(self.config)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        log.close()
        self.processes.append(process)
        return process

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.fixture
def workers(tmp_path: Path, state_url: str) -> Iterator[Workers]:
    config = tmp_path / "worker.yaml"
    config.write_text(CONFIG.format(state_dir=tmp_path / "worker-state", url=state_url, in_process="true"))
    pool = Workers(config, tmp_path)
    try:
        yield pool
    finally:
        pool.stop()


def test_a_job_of_a_killed_worker_is_finished_by_another_and_called_back_once(
    make_gateway: GatewayFactory, state_url: str, workers: Workers, receiver: Receiver, tmp_path: Path
) -> None:
    # the gateway only accepts jobs; the workers are separate processes sharing its database
    gateway = make_gateway(CONFIG.format(state_dir=tmp_path / "gw", url=state_url, in_process="false"))
    with httpx.Client(base_url=gateway.url, timeout=30) as client:
        first = workers.start()
        request = {"model": "slow", "messages": [{"role": "user", "content": "survive"}]}
        answer = client.post(
            "/v1/jobs", json={"operation": "chat", "request": request, "callback_url": receiver.url}
        )
        assert answer.status_code == 202
        job_id = answer.json()["id"]

        def job() -> dict[str, Any]:
            found: dict[str, Any] = client.get(f"/v1/jobs/{job_id}").json()
            return found

        wait_for(lambda: job()["status"] == "running")  # the first worker is mid-job (2 s upstream)
        first.send_signal(signal.SIGKILL)
        assert first.wait(timeout=10) == -signal.SIGKILL
        assert job()["status"] == "running"  # its lease has not been given back: it just expires
        workers.start()
        done = wait_for(lambda: job() if job()["status"] != "running" else None, timeout=90)
        assert done["status"] == "succeeded"
        assert done["attempts"] == 2  # the killed attempt and the one that finished
        assert done["result"]["choices"][0]["message"]["content"] == "echo: survive"
        log = wait_for(lambda: _delivered(client, job_id), timeout=30)
        secret = client.get("/v1/webhooks/secret").json()["secret"]
    assert len(log["data"]) == 1  # one message for one stored result
    message = log["data"][0]
    assert message["status"] == "delivered"
    assert [a["status_code"] for a in message["attempts"] if a["status_code"] == 204] == [204]
    assert receiver.deliveries
    assert {d.headers["webhook-id"] for d in receiver.deliveries} == {message["id"]}
    for delivery in receiver.deliveries:
        payload = Webhook(secret).verify(delivery.body, delivery.headers)
        assert payload["data"]["id"] == job_id
        assert payload["data"]["status"] == "succeeded"
        assert payload["data"]["result"] == done["result"]


def _delivered(client: httpx.Client, job_id: str) -> dict[str, Any] | None:
    log: dict[str, Any] = client.get(f"/v1/jobs/{job_id}/deliveries").json()
    return log if log["data"] and log["data"][0]["status"] == "delivered" else None
