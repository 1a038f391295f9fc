"""An idle job worker polls through plain SQL (:mod:`interlace.jobs.due`), on SQLite and on Postgres.

* In a fresh interpreter (this one has long imported SQLAlchemy) a runtime with its in-process worker
  polls an empty, migrated database without importing SQLAlchemy; a job queued by another process
  (this test's) is then claimed at its next poll, run, and only then are the stores loaded.
* In this process, with the job's run left out (a worker that only records its claims): the stores
  are not built while nothing is due, a ``notify()`` makes a full pass, and a probe that fails (the
  database is down) is a failed poll, logged, after which the worker claims as before.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, cast

import pytest
from tests.jobs.helpers import await_for
from tests.support.events import FlakyDatabase

from interlace.config.jobs import JobsConfig
from interlace.jobs import worker as worker_module
from interlace.jobs.due import Due
from interlace.jobs.operations import Executors
from interlace.jobs.queue import Job, NewJob
from interlace.jobs.store import SqlJobQueue
from interlace.jobs.stores import LazyStores
from interlace.jobs.transactions import Transactions
from interlace.jobs.webhooks.targets import TargetPolicy
from interlace.jobs.worker import Worker
from interlace.store.database import Database
from interlace.store.driver_pool import DriverPool

CONFIG = """
state:
  dir: {state_dir}
  database_url: {url}
models:
  echo:
    deployments:
      - {{provider: fake, model: echo}}
jobs:
  worker: {{poll_interval: 0.05}}
"""

# a gateway's runtime and its worker, polling; one line of JSON once it polled idle a few times, and
# another after it stopped (the test queues a job in between, from its own process)
SERVE = """
import asyncio, json, sys
from pathlib import Path

from interlace.config.loader import load_config
from interlace.jobs import worker
from interlace.runtime import Runtime

polls = []
probe = worker.probe


async def counted(pool, now):
    found = await probe(pool, now)
    polls.append(bool(found))
    return found


async def main():
    worker.probe = counted
    runtime = Runtime(load_config(Path(sys.argv[1])))
    await runtime.start()
    try:
        while len(polls) < 5:
            await asyncio.sleep(0.01)
        idle = {"polls": len(polls), "due": any(polls), "sqlalchemy": "sqlalchemy" in sys.modules}
        print(json.dumps(idle), flush=True)
        await asyncio.to_thread(sys.stdin.readline)  # the test saw its job run
    finally:
        await runtime.stop()
    print(json.dumps({"sqlalchemy": "sqlalchemy" in sys.modules}), flush=True)


asyncio.run(main())
"""


def new_job() -> NewJob:
    return NewJob(
        tenant="",
        principal={"kind": "anonymous", "id": "anonymous", "tenant": None},
        operation="chat",
        model="echo",
        request={"model": "echo", "messages": [{"role": "user", "content": "queued elsewhere"}]},
        max_attempts=1,
    )


@pytest.mark.slow
async def test_an_idle_worker_polls_without_sqlalchemy_and_claims_a_job_queued_elsewhere(
    state_url: str, tmp_path: Path
) -> None:
    database = Database(state_url)
    await database.start()  # migrated here: the gateway below finds it at head (no Alembic, no SQLAlchemy)
    config = tmp_path / "interlace.yaml"
    config.write_text(CONFIG.format(state_dir=json.dumps(str(tmp_path / "state")), url=json.dumps(state_url)))
    logs = tmp_path / "gateway.log"
    with logs.open("wb") as log:  # a file, not a pipe nobody reads while the gateway runs
        gateway = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            SERVE,
            str(config),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=log,
        )
    assert gateway.stdin is not None
    assert gateway.stdout is not None
    try:
        line = await asyncio.wait_for(gateway.stdout.readline(), 60)
        assert line, logs.read_text()
        assert json.loads(line) == {"polls": 5, "due": False, "sqlalchemy": False}

        queue = SqlJobQueue(Transactions(database))
        job, _ = await queue.enqueue(new_job())  # another process: the gateway is not notified

        async def ran() -> bool:
            found = await queue.get(job.id, None)
            assert found is not None
            return found.status not in {"queued", "running"}

        await await_for(ran, timeout=30)
        done = await queue.get(job.id, None)
        assert done is not None
        assert done.status == "succeeded", done.error
        assert done.attempts == 1

        gateway.stdin.write(b"done\n")
        await gateway.stdin.drain()
        out, _ = await asyncio.wait_for(gateway.communicate(), 60)
        assert gateway.returncode == 0, logs.read_text()
        assert json.loads(out.decode().splitlines()[-1]) == {"sqlalchemy": True}  # loaded for the job
    finally:
        if gateway.returncode is None:
            gateway.kill()
            await gateway.wait()
        await database.aclose()


class Claims(Worker):
    """A worker that records what it claims instead of running it (the run is not under test)."""

    claimed: list[Job]
    probes: list[Due]

    async def _execute(self, job: Job) -> None:
        self.claimed.append(job)


@pytest.fixture
async def worker(database: FlakyDatabase, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Claims]:
    config = JobsConfig.model_validate({"worker": {"poll_interval": 0.02}})
    executors = Executors()
    stores = LazyStores(config, database, executors, TargetPolicy([]))
    worker = Claims(
        stores=stores,
        database=database,
        executors=executors,
        router=cast(Any, None),
        gate=cast(Any, None),
        recorder=cast(Any, None),
        config=config,
        max_deadline=30,
    )
    worker.claimed = []
    worker.probes = []
    probe = worker_module.probe

    async def counted(pool: DriverPool, now: float) -> Due:
        found = await probe(pool, now)
        worker.probes.append(found)
        return found

    monkeypatch.setattr(worker_module, "probe", counted)
    worker.start()
    yield worker
    await worker.aclose()


async def until(check: Callable[[], bool]) -> None:
    await await_for(lambda: asyncio.sleep(0, check()), timeout=10)


async def test_the_stores_wait_for_due_work_and_a_job_queued_elsewhere_is_claimed(
    worker: Claims, database: FlakyDatabase
) -> None:
    await until(lambda: len(worker.probes) >= 5)
    assert not any(worker.probes)
    assert worker.stores.built is None
    queue = SqlJobQueue(Transactions(database))  # not the worker's: nothing notifies it
    job, _ = await queue.enqueue(new_job())
    await until(lambda: bool(worker.claimed))
    assert [j.id for j in worker.claimed] == [job.id]
    assert worker.stores.built is not None


async def test_a_notify_makes_a_full_pass_without_asking(worker: Claims) -> None:
    await until(lambda: len(worker.probes) >= 2)
    assert worker.stores.built is None
    worker.notify()
    await until(lambda: worker.stores.built is not None)
    assert not any(worker.probes)  # no probe found anything: the notified pass went to the stores itself
    assert worker.claimed == []


async def test_a_failed_probe_is_a_failed_poll_and_the_worker_goes_on(
    worker: Claims, database: FlakyDatabase, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="interlace.jobs.worker")
    database.down = True
    await until(lambda: sum("poll failed" in r.getMessage() for r in caplog.records) >= 2)
    database.down = False
    assert worker.stores.built is None
    job, _ = await SqlJobQueue(Transactions(database)).enqueue(new_job())
    await until(lambda: bool(worker.claimed))
    assert [j.id for j in worker.claimed] == [job.id]
