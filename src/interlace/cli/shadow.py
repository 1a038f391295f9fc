"""``interlace shadow report``: each model beside its shadow candidate, from the state database.

Reads the database the configuration names (``state.database_url``, else SQLite under ``state.dir``;
without ``--config``, the embedded default's ``.interlace/``) and prints one table per
``alias → candidate`` pair: requests mirrored, agreement (exact, after whitespace normalisation, and
the mean token overlap), latency p50/p95 of the successful calls, error rate and cost of each side.
A SQLite file that does not exist is not created: there is simply nothing to report yet.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from interlace.cli.options import ConfigOption, fail, load_settings
from interlace.core.errors import ConfigError

if TYPE_CHECKING:
    from rich.table import Table

    from interlace.config.schema import Config
    from interlace.store.shadow import ShadowSummary, SideSummary

__all__ = ["render_summary", "shadow_app"]

shadow_app = typer.Typer(
    name="shadow",
    help="Shadow traffic: compare a model with the candidate it mirrors requests to.",
    no_args_is_help=True,
)


@shadow_app.command("report")
def report(
    config: ConfigOption = None,
    model: Annotated[
        str | None, typer.Option("--model", "-m", help="Only this alias, as the primary or the candidate.")
    ] = None,
    since: Annotated[
        float | None, typer.Option("--since", min=0, metavar="HOURS", help="Only the last HOURS hours.")
    ] = None,
) -> None:
    """Print each shadowed model beside its candidate: agreement, latency, errors, cost."""
    from interlace.store.database import default_database_url  # noqa: PLC0415 - SQLAlchemy when it runs

    try:
        settings = load_settings(config)
        url = settings.state.database_url or default_database_url(settings.state.dir)
        cutoff = datetime.now(UTC) - timedelta(hours=since) if since is not None else None
        summaries = [] if _absent(url) else asyncio.run(_summaries(url, model, cutoff))
    except ConfigError as exc:
        fail(str(exc))
    console = Console()
    if not summaries:
        _print_nothing(console, settings, model, since)
        return
    for summary in summaries:
        console.print(render_summary(summary))


def _absent(url: str) -> bool:
    """A SQLite database file that does not exist (opening it would create it)."""
    if not url.startswith("sqlite"):
        return False
    path = url.split("///", 1)[-1]
    return path in ("", ":memory:") or not Path(path).exists()


async def _summaries(url: str, model: str | None, since: datetime | None) -> list[ShadowSummary]:
    from interlace.store.database import Database  # noqa: PLC0415
    from interlace.store.shadow import ShadowReport  # noqa: PLC0415

    database = Database(url)
    await database.start()
    try:
        return await ShadowReport(database).summaries(model=model, since=since)
    finally:
        await database.aclose()


def _print_nothing(console: Console, settings: Config, model: str | None, since: float | None) -> None:
    window = f" in the last {since:g} hours" if since is not None else ""
    console.print(
        f"no shadow records yet{window} — configure models.{model or '<alias>'}.shadow "
        "(model: the candidate alias, sample: the share of requests mirrored) and serve traffic",
        highlight=False,
        markup=False,
    )
    configured = [
        f"{alias} → {cfg.shadow.model} ({cfg.shadow.sample:.0%})"
        for alias, cfg in settings.models.items()
        if cfg.shadow is not None and model in (None, alias, cfg.shadow.model)
    ]
    if configured:
        console.print(f"configured: {', '.join(configured)}", highlight=False, markup=False)


def render_summary(summary: ShadowSummary) -> Table:
    """One pair, side by side: the primary, the shadow, and how the shadow compares."""
    from rich.table import Table  # noqa: PLC0415

    first, last = summary.first_at, summary.last_at
    table = Table(
        title=f"{summary.alias} → {summary.candidate}",
        caption=f"{summary.requests} mirrored · {first:%Y-%m-%d %H:%M} to {last:%Y-%m-%d %H:%M} UTC",
    )
    table.add_column("")
    table.add_column(f"primary · {summary.alias}", justify="right")
    table.add_column(f"shadow · {summary.candidate}", justify="right")
    table.add_column("shadow vs primary", justify="right")
    p, s = summary.primary, summary.shadow
    table.add_row("requests", str(p.requests), str(s.requests), "")
    table.add_row("error rate", _errors(p), _errors(s), f"{(s.error_rate - p.error_rate) * 100:+.1f} pp")
    table.add_row(
        "latency p50",
        _ms(p.latency_p50_ms),
        _ms(s.latency_p50_ms),
        _ratio(s.latency_p50_ms, p.latency_p50_ms),
    )
    table.add_row(
        "latency p95",
        _ms(p.latency_p95_ms),
        _ms(s.latency_p95_ms),
        _ratio(s.latency_p95_ms, p.latency_p95_ms),
    )
    table.add_row(
        "cost", _usd(p), _usd(s), _ratio(s.cost_usd if s.priced else None, p.cost_usd if p.priced else None)
    )
    agreement = summary.agreement
    table.add_row(
        "agreement (exact)",
        "",
        "",
        "-" if agreement is None else f"{agreement:.1%} of {summary.compared} compared",
    )
    similarity = summary.similarity_mean
    table.add_row("token overlap (mean)", "", "", "-" if similarity is None else f"{similarity:.3f}")
    return table


def _errors(side: SideSummary) -> str:
    return f"{side.error_rate:.1%} ({side.errors}/{side.requests})"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f} ms"


def _usd(side: SideSummary) -> str:
    if not side.priced:
        return "-"
    return f"${side.cost_usd:.6f}" + (f" ({side.priced} priced)" if side.priced < side.requests else "")


def _ratio(shadow: float | None, primary: float | None) -> str:
    if shadow is None or primary is None:
        return "-"
    if primary == 0:
        return "same" if shadow == 0 else "-"
    return f"{shadow / primary:.2f}x"
