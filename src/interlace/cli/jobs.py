"""``interlace jobs list | show | dead | retry | cancel | batches``: jobs and dead letters from the shell.

The commands read the state database of ``--config`` directly (as the operator: every tenant, or
``--tenant``), so they work whether or not a gateway is running.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Annotated, Any

import orjson
import typer
from rich.console import Console

from interlace.cli.usage import ConfigOption, database_for, load_settings
from interlace.core.errors import ConfigError

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from rich.table import Table

    from interlace.config.schema import Config
    from interlace.jobs.queue import Job

__all__ = ["jobs_app"]

jobs_app = typer.Typer(name="jobs", help="Durable jobs, dead letters and batches.", no_args_is_help=True)

TenantOption = Annotated[str | None, typer.Option(help="Only this tenant's jobs (default: every tenant).")]
LimitOption = Annotated[int, typer.Option(min=1, max=1000, help="At most this many, newest first.")]


class _Store:
    """The job tables of one configuration's state database, opened for one command."""

    def __init__(self, settings: Config) -> None:
        # the job system's parts (SQLAlchemy, httpx) only when a jobs command runs
        from interlace.jobs.batches import Batches  # noqa: PLC0415
        from interlace.jobs.files import Files  # noqa: PLC0415
        from interlace.jobs.operations import Executors  # noqa: PLC0415
        from interlace.jobs.store import SqlJobQueue  # noqa: PLC0415
        from interlace.jobs.transactions import Transactions  # noqa: PLC0415
        from interlace.jobs.webhooks.delivery import Deliverer  # noqa: PLC0415
        from interlace.jobs.webhooks.secret_store import WebhookSecrets  # noqa: PLC0415
        from interlace.jobs.webhooks.targets import TargetPolicy  # noqa: PLC0415

        self.database = database_for(settings)
        tx = Transactions(self.database)
        self.queue = SqlJobQueue(tx)
        executors = Executors()
        self.batches = Batches(tx, executors, Files(tx, executors), max_attempts=settings.jobs.max_attempts)
        webhooks = settings.jobs.webhooks
        self.deliverer = Deliverer(
            tx, WebhookSecrets(tx), TargetPolicy(webhooks.allow, allow_public=webhooks.allow_public), webhooks
        )


def _run(config: ConfigOption, work: Callable[[_Store], Awaitable[None]]) -> None:
    errors = Console(stderr=True)
    settings = load_settings(config, errors)

    async def main() -> None:
        store = _Store(settings)
        await store.database.start()
        try:
            await work(store)
        finally:
            await store.deliverer.aclose()
            await store.database.aclose()

    try:
        asyncio.run(main())
    except ConfigError as exc:
        errors.print(f"[bold red]error:[/] {exc}", highlight=False)
        raise typer.Exit(code=2) from None


def _table(jobs: list[Job]) -> Table:
    from rich.table import Table  # noqa: PLC0415

    table = Table("id", "tenant", "operation", "model", "status", "attempts", "age", "error")
    now = time.time()
    for job in jobs:
        error = (job.error or {}).get("code") or ""
        reason = (job.error or {}).get("dead_letter_reason")
        table.add_row(
            job.id,
            job.tenant or "-",
            job.operation,
            job.model,
            job.status,
            f"{job.attempts}/{job.max_attempts}",
            f"{now - job.created_at:.0f}s",
            f"{error} ({reason})" if reason else error,
        )
    return table


@jobs_app.command("list")
def list_command(
    config: ConfigOption = None,
    status: Annotated[str | None, typer.Option(help="Comma-separated statuses (queued,running,…).")] = None,
    tenant: TenantOption = None,
    batch: Annotated[str | None, typer.Option(help="Only the lines of this batch.")] = None,
    limit: LimitOption = 50,
) -> None:
    """List jobs, newest first."""
    statuses = [s for s in (status or "").split(",") if s]

    async def work(store: _Store) -> None:
        found = await store.queue.list(tenant, statuses=statuses, batch_id=batch, limit=limit)
        Console().print(_table(found))

    _run(config, work)


@jobs_app.command("dead")
def dead_command(config: ConfigOption = None, tenant: TenantOption = None, limit: LimitOption = 50) -> None:
    """List dead letters: jobs that used every attempt, with the reason."""

    async def work(store: _Store) -> None:
        Console().print(_table(await store.queue.list(tenant, statuses=["dead"], limit=limit)))

    _run(config, work)


@jobs_app.command("show")
def show_command(job_id: str, config: ConfigOption = None) -> None:
    """Show one job (request, result or error) and its webhook deliveries, as JSON."""

    async def work(store: _Store) -> None:
        job = await store.queue.get(job_id, None)
        if job is None:
            Console(stderr=True).print(f"[bold red]error:[/] no job {job_id}")
            raise typer.Exit(code=1)
        shown: dict[str, Any] = {**job.to_api(), "tenant": job.tenant, "request": job.request}
        shown["deliveries"] = (await store.deliverer.log(job_id, None))["data"]
        print(orjson.dumps(shown, option=orjson.OPT_INDENT_2).decode())

    _run(config, work)


@jobs_app.command("retry")
def retry_command(job_id: str, config: ConfigOption = None) -> None:
    """Queue a failed or dead job again, with fresh attempts."""
    _transition(job_id, config, "retry")


@jobs_app.command("cancel")
def cancel_command(job_id: str, config: ConfigOption = None) -> None:
    """Cancel a queued or running job (a running attempt stops at its next heartbeat)."""
    _transition(job_id, config, "cancel")


def _transition(job_id: str, config: ConfigOption, action: str) -> None:
    async def work(store: _Store) -> None:
        before = await store.queue.get(job_id, None)
        if before is None:
            Console(stderr=True).print(f"[bold red]error:[/] no job {job_id}")
            raise typer.Exit(code=1)
        after = await (store.queue.retry if action == "retry" else store.queue.cancel)(job_id, None)
        if after is None or after.status == before.status:
            Console(stderr=True).print(
                f"[bold red]error:[/] job {job_id} is {before.status}: cannot {action} it"
            )
            raise typer.Exit(code=1)
        Console().print(f"[green]✓[/] job {job_id}: {before.status} → {after.status}")

    _run(config, work)


@jobs_app.command("batches")
def batches_command(
    config: ConfigOption = None, tenant: TenantOption = None, limit: LimitOption = 20
) -> None:
    """List batches with their progress."""

    from rich.progress_bar import ProgressBar  # noqa: PLC0415
    from rich.table import Table  # noqa: PLC0415

    async def work(store: _Store) -> None:
        table = Table("id", "status", "progress", "done", "completed", "failed", "endpoint")
        for batch in await store.batches.list(tenant, limit=limit):
            counts = batch["request_counts"]
            done = counts["completed"] + counts["failed"]
            table.add_row(
                batch["id"],
                batch["status"],
                ProgressBar(total=max(1, counts["total"]), completed=done, width=20),
                f"{done}/{counts['total']}",
                str(counts["completed"]),
                str(counts["failed"]),
                batch["endpoint"],
            )
        Console().print(table)

    _run(config, work)
