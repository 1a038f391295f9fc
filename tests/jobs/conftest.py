"""Fixtures of the job tests: a state database on SQLite and on the machine's real Postgres, a webhook
receiver on 127.0.0.1, and a poll helper.

Postgres tests get a database of their own (``interlace_jobs_<random>``, dropped afterwards, see
:mod:`tests.support.databases`).
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from tests.jobs.helpers import Delivery, Receiver
from tests.support.databases import throwaway_postgres
from tests.support.events import FlakyDatabase

from interlace.store.database import default_database_url


@pytest.fixture(params=["sqlite", "postgres"])
async def state_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A state database URL: each test that takes it runs on SQLite and on a fresh Postgres database."""
    if request.param == "sqlite":
        yield default_database_url(str(tmp_path / "state"))
        return
    async for url in throwaway_postgres("interlace_jobs"):
        yield url


@pytest.fixture
async def database(state_url: str) -> AsyncIterator[FlakyDatabase]:
    """A started state database (SQLite, then Postgres), whose connections can be taken down."""
    database = FlakyDatabase(state_url)
    await database.start()
    yield database
    await database.aclose()


@pytest.fixture
async def postgres_url() -> AsyncIterator[str]:
    """A fresh Postgres database only (the scale-out path), for the heaviest tests."""
    async for url in throwaway_postgres("interlace_jobs"):
        yield url


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length)
            with state.lock:
                state.deliveries.append(Delivery({k.lower(): v for k, v in self.headers.items()}, body))
                status = state.statuses.pop(0) if state.statuses else 204
            self.send_response(status)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            del format, args

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hooks"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
