"""``interlace usage``: usage and cost per day, model or API key, from the ``usage_daily`` read model."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from interlace.core.errors import ConfigError

if TYPE_CHECKING:
    from collections.abc import Callable
    from datetime import date

    from interlace.config.schema import Config
    from interlace.observability.events import GroupBy, UsageRow
    from interlace.store.database import Database

__all__ = ["format_usd", "load_settings", "print_usage_table", "usage_command"]

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config", "-c", help="interlace.yaml whose state to read; without it, the embedded default."
    ),
]


def load_settings(path: Path | None, console: Console) -> Config:
    """The configuration (or the embedded default); a config error exits with status 2."""
    from interlace.config.defaults import embedded_default  # noqa: PLC0415 - the schema when loading
    from interlace.config.loader import load_config  # noqa: PLC0415

    try:
        return load_config(path) if path else embedded_default()
    except ConfigError as exc:
        console.print(f"[bold red]error:[/] {exc}", highlight=False)
        raise typer.Exit(code=2) from None


def database_for(settings: Config) -> Database:
    from interlace.store.database import Database, default_database_url  # noqa: PLC0415 - SQLAlchemy

    return Database(settings.state.database_url or default_database_url(settings.state.dir))


def usage_command(
    config: ConfigOption = None,
    days: Annotated[int, typer.Option(min=1, help="The last N UTC days, today included.")] = 7,
    tenant: Annotated[
        str | None, typer.Option(help="The tenant to report on (default: the single default tenant).")
    ] = None,
    by: Annotated[str, typer.Option("--by", help="Group by day, model or api_key.")] = "day",
) -> None:
    """Print usage and cost per day, model or API key."""
    from interlace.observability.events import GROUP_BY  # noqa: PLC0415 - SQLAlchemy only when it runs

    errors = Console(stderr=True)
    if by not in GROUP_BY:
        errors.print(f"[bold red]error:[/] --by must be one of {', '.join(GROUP_BY)}, not {by!r}")
        raise typer.Exit(code=2)
    settings = load_settings(config, errors)
    end = datetime.now(UTC).date()
    start = end - timedelta(days=days - 1)
    try:
        rows = asyncio.run(_read(database_for(settings), tenant, start, end, by))
    except ConfigError as exc:
        errors.print(f"[bold red]error:[/] {exc}", highlight=False)
        raise typer.Exit(code=2) from None
    print_usage_table(rows, Console(), tenant=tenant, start=start, end=end, group_by=by)


async def _read(
    database: Database, tenant: str | None, start: date, end: date, by: GroupBy
) -> list[UsageRow]:
    from interlace.observability.events import usage  # noqa: PLC0415

    await database.start()
    try:
        return await usage(database, tenant=tenant, start=start, end=end, group_by=by)
    finally:
        await database.aclose()


def format_usd(nanos: int) -> str:
    """Nano-dollars as exact USD: ``1234567`` → ``$0.001234567``, ``2500000000`` → ``$2.50``."""
    digits = f"{Decimal(nanos).scaleb(-9):,.9f}".rstrip("0")
    whole, _, fraction = digits.partition(".")
    return f"${whole}.{fraction.ljust(2, '0')}"


def print_usage_table(
    rows: list[UsageRow], console: Console, *, tenant: str | None, start: date, end: date, group_by: GroupBy
) -> None:
    from rich.table import Table  # noqa: PLC0415

    from interlace.observability.events import UsageRow  # noqa: PLC0415

    title = f"usage · tenant {tenant or '(default)'} · {start} … {end} · by {group_by}"
    table = Table(title=title, show_footer=bool(rows))
    total = UsageRow.combined(rows)
    figures: list[tuple[str, Callable[[UsageRow], str]]] = [
        ("requests", lambda r: f"{r.requests:,}"),
        ("errors", lambda r: f"{r.errors:,}"),
        ("partial", lambda r: f"{r.partial:,}"),
        ("prompt", lambda r: f"{r.prompt_tokens:,}"),
        ("cached", lambda r: f"{r.cached_tokens:,}"),
        ("completion", lambda r: f"{r.completion_tokens:,}"),
        ("reasoning", lambda r: f"{r.reasoning_tokens:,}"),
        ("cost", lambda r: format_usd(r.cost_nanos)),
        ("shadow", lambda r: f"{r.shadow_requests:,} · {format_usd(r.shadow_cost_nanos)}"),
    ]
    table.add_column({"api_key": "api key"}.get(group_by, group_by), footer="total")
    for name, cell in figures:
        table.add_column(name, justify="right", footer=cell(total))
    for row in rows:
        table.add_row(row.key or "-", *(cell(row) for _, cell in figures))
    if rows:
        console.print(table)
    else:
        console.print(f"{title}: no requests recorded")
