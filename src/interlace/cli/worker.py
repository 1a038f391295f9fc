"""``interlace worker``: a process that runs jobs from the shared queue, and nothing else.

At scale, several of these (on several machines) share one Postgres ``state.database_url``; each
claims jobs with a lease and renews it, so a worker that dies has its jobs picked up by another once
the lease expires. SIGTERM or Ctrl-C stops claiming, stops the running jobs and gives their leases
back at once.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from interlace.cli.usage import ConfigOption, load_settings
from interlace.core.errors import ConfigError

if TYPE_CHECKING:
    from interlace.config.schema import Config

__all__ = ["worker_command"]


def worker_command(
    config: ConfigOption = None,
    concurrency: Annotated[
        int | None, typer.Option(min=1, max=1024, help="Jobs run at once (default jobs.worker.concurrency).")
    ] = None,
) -> None:
    """Run jobs and batches from the queue (no HTTP server)."""
    from interlace.cli.allocator import map_large_blocks  # noqa: PLC0415 - only when it runs
    from interlace.observability.logs import configure_logging  # noqa: PLC0415

    map_large_blocks()  # a long-running process (cli.allocator)

    errors = Console(stderr=True)
    settings = load_settings(config, errors)
    worker = settings.jobs.worker.model_copy(
        update={"enabled": True, **({"concurrency": concurrency} if concurrency else {})}
    )
    settings = settings.model_copy(update={"jobs": settings.jobs.model_copy(update={"worker": worker})})
    output = configure_logging(settings.observability.logs)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    try:
        asyncio.run(_work(settings, str(config) if config else "embedded default", errors))
    except ConfigError as exc:
        errors.print(f"[bold red]error:[/] {exc}", highlight=False)
        raise typer.Exit(code=2) from None
    finally:
        output.close()


async def _work(settings: Config, source: str, console: Console) -> None:
    from interlace.runtime import Runtime  # noqa: PLC0415 - the runtime only for the worker

    runtime = Runtime(settings, config_source=source)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await runtime.start()
    worker = runtime.jobs.worker
    console.print(
        f"worker {worker.owner if worker else '?'} · {source} · {settings.jobs.worker.concurrency} at once"
    )
    try:
        await stop.wait()
    finally:
        await runtime.stop()
        console.print("stopped")
