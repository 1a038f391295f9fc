"""``interlace jobs``: list, dead letters, show, retry, cancel and batch progress from the shell."""

from __future__ import annotations

import asyncio
from pathlib import Path

import orjson
from typer.testing import CliRunner

from interlace.cli.main import app
from interlace.core.principal import Principal
from interlace.jobs.batches import Batches
from interlace.jobs.files import Files
from interlace.jobs.operations import Executors
from interlace.jobs.queue import NewJob
from interlace.jobs.store import SqlJobQueue
from interlace.jobs.transactions import Transactions
from interlace.store.database import Database, default_database_url

ENV = {"COLUMNS": "250"}
REQUEST = {"model": "echo", "messages": [{"role": "user", "content": "hi"}]}


def seed(tmp_path: Path) -> dict[str, str]:
    async def write() -> dict[str, str]:
        database = Database(default_database_url(str(tmp_path / "state")))
        await database.start()
        tx = Transactions(database)
        queue = SqlJobQueue(tx, lease_seconds=60)
        new = NewJob(
            tenant="acme", principal={}, operation="chat", model="echo", request=REQUEST, max_attempts=1
        )
        first, _ = await queue.enqueue(new)
        second, _ = await queue.enqueue(new)
        [claimed] = await queue.claim("w", limit=1)
        await queue.fail(claimed.id, "w", {"code": "upstream_error", "status": 502}, retryable=True, delay=0)
        executors = Executors()
        files = Files(tx, executors)
        lines = b"\n".join(
            orjson.dumps(
                {"custom_id": f"r{i}", "method": "POST", "url": "/v1/chat/completions", "body": REQUEST}
            )
            for i in range(4)
        )
        uploaded = await files.create("acme", purpose="batch", filename="in.jsonl", content=lines)
        principal = Principal(kind="key", id="ik_1", tenant="acme")
        batch = await Batches(tx, executors, files, max_attempts=1).create(
            principal,
            input_file_id=uploaded["id"],
            endpoint="/v1/chat/completions",
            completion_window="24h",
            metadata=None,
        )
        await database.aclose()
        queued = second.id if claimed.id == first.id else first.id
        return {"dead": claimed.id, "queued": queued, "batch": batch["id"]}

    return asyncio.run(write())


def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "interlace.yaml"
    path.write_text(f"state:\n  dir: {tmp_path / 'state'}\n")
    return path


def test_jobs_commands(tmp_path: Path) -> None:
    ids = seed(tmp_path)
    config = str(config_file(tmp_path))
    runner = CliRunner()

    dead = runner.invoke(app, ["jobs", "dead", "-c", config], env=ENV)
    assert dead.exit_code == 0, dead.output
    assert ids["dead"] in dead.output
    assert "attempts exhausted" in dead.output
    assert ids["queued"] not in dead.output

    listed = runner.invoke(
        app, ["jobs", "list", "-c", config, "--status", "queued", "--tenant", "acme"], env=ENV
    )
    assert listed.exit_code == 0
    assert ids["queued"] in listed.output
    assert ids["dead"] not in listed.output

    shown = runner.invoke(app, ["jobs", "show", ids["dead"], "-c", config], env=ENV)
    assert shown.exit_code == 0
    detail = orjson.loads(shown.output)
    assert detail["status"] == "dead"
    assert detail["request"] == REQUEST
    assert detail["deliveries"] == []

    retried = runner.invoke(app, ["jobs", "retry", ids["dead"], "-c", config], env=ENV)
    assert retried.exit_code == 0
    assert "dead → queued" in retried.output
    again = runner.invoke(app, ["jobs", "retry", ids["dead"], "-c", config], env=ENV)
    assert again.exit_code == 1
    assert "cannot retry" in again.output

    cancelled = runner.invoke(app, ["jobs", "cancel", ids["queued"], "-c", config], env=ENV)
    assert cancelled.exit_code == 0
    assert "queued → cancelled" in cancelled.output
    missing = runner.invoke(app, ["jobs", "show", "job_nope", "-c", config], env=ENV)
    assert missing.exit_code == 1

    batches = runner.invoke(app, ["jobs", "batches", "-c", config], env=ENV)
    assert batches.exit_code == 0
    assert ids["batch"] in batches.output
    assert "0/4" in batches.output
    assert "in_progress" in batches.output
