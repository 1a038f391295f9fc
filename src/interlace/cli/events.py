"""``interlace events replay``: rebuild the read models from the request event log.

It first replays any spool files a stopped gateway left behind (those of a running gateway are locked
and left alone), then recomputes ``usage_daily`` from ``request_events`` in one transaction.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import typer
from rich.console import Console

from interlace.cli.usage import ConfigOption, database_for, load_settings
from interlace.core.errors import ConfigError

if TYPE_CHECKING:
    from interlace.config.schema import Config
    from interlace.observability.events import ReplayResult

__all__ = ["events_app", "replay_command"]

events_app = typer.Typer(
    name="events", help="The request event log and its read models.", no_args_is_help=True
)


@events_app.command("replay")
def replay_command(config: ConfigOption = None) -> None:
    """Rebuild the usage read model by replaying the event log."""
    errors = Console(stderr=True)
    settings = load_settings(config, errors)
    console = Console()
    try:
        recovered, result = asyncio.run(_replay(settings, console))
    except ConfigError as exc:
        errors.print(f"[bold red]error:[/] {exc}", highlight=False)
        raise typer.Exit(code=2) from None
    if recovered:
        console.print(f"recovered {recovered:,} spooled events into the log")
    console.print(
        f"[green]✓[/] rebuilt usage_daily from {result.events:,} events into {result.rows:,} rows "
        f"in {result.duration_s:.2f}s"
    )


async def _replay(settings: Config, console: Console) -> tuple[int, ReplayResult]:
    from rich.progress import (  # noqa: PLC0415 - what the command needs, only when it runs
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    from interlace.observability.events import EventLog, default_spool_dir, replay  # noqa: PLC0415

    database = database_for(settings)
    await database.start()
    try:
        spool = EventLog(database, spool_dir=default_spool_dir(settings.state.dir))
        recovered = await spool.recover_spool()
        with Progress(
            TextColumn("replaying events"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
        ) as progress:
            task = progress.add_task("replay", total=None)

            def advance(done: int, total: int) -> None:
                progress.update(task, completed=done, total=total)

            result = await replay(database, progress=advance)
        return recovered, result
    finally:
        await database.aclose()
