"""``interlace flow list | validate | status | run``: declare, check, watch and run flows.

``run`` starts the flows named (or ``--all``) on this process with the runtime's router, gate and
state; it prints a progress line per flow every few seconds (messages in, out, errors, dead letters,
in flight) and on SIGTERM or Ctrl-C stops pulling, drains what is in flight (each flow's
``drain_timeout``; the rest is nacked for redelivery) and exits 0. N processes running the same flow
share its source through the broker's consumer group (or the inbox leases) without duplicates.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from interlace.cli.options import ConfigOption, fail, load_settings
from interlace.core.errors import ConfigError

if TYPE_CHECKING:
    from interlace.config.schema import Config
    from interlace.flows.metrics import FlowStats

__all__ = ["flow_app"]

flow_app = typer.Typer(
    name="flow", help="Event-driven flows: list, validate, status, run.", no_args_is_help=True
)


def _settings(config: ConfigOption) -> Config:
    try:
        return load_settings(config)
    except ConfigError as exc:
        fail(str(exc))


def _sinks(flow: object) -> str:
    sink = getattr(flow, "sink", None)
    sinks: dict[str, object] = getattr(flow, "sinks", {})
    if sink is not None:
        return str(getattr(sink, "type", "?"))
    return ", ".join(f"{name}={getattr(s, 'type', '?')}" for name, s in sinks.items())


@flow_app.command("list")
def list_flows(config: ConfigOption = None) -> None:
    """The flows of the configuration: source, steps and sinks."""
    from rich.table import Table  # noqa: PLC0415 - what the command needs, only when it runs

    settings = _settings(config)
    table = Table("flow", "source", "steps", "sinks", "max in flight", "ordering")
    for name, flow in settings.flows.items():
        steps = " → ".join(s.name or f"{s.type}-{i}" for i, s in enumerate(flow.steps)) or "—"
        table.add_row(name, flow.source.type, steps, _sinks(flow), str(flow.max_in_flight), flow.ordering)
    Console().print(table if settings.flows else "no flows configured (add them under flows:)")


@flow_app.command()
def validate(config: ConfigOption = None) -> None:
    """Check the configuration and build every flow (functions, models and services it names)."""
    settings = _settings(config)
    from interlace.flows.process import FlowProcess  # noqa: PLC0415 - the runtime only when needed
    from interlace.runtime import Runtime  # noqa: PLC0415

    if not settings.flows:
        fail("no flows configured (add them under flows:)")
    try:
        FlowProcess(Runtime(settings), list(settings.flows))
    except (ConfigError, LookupError, ValueError) as exc:
        fail(str(exc))
    Console().print(f"[green]✓[/] {len(settings.flows)} flow(s) valid: {', '.join(settings.flows)}")


@flow_app.command()
def status(config: ConfigOption = None) -> None:
    """What each flow process last reported: counters, lag and dead letters."""
    from rich.table import Table  # noqa: PLC0415

    settings = _settings(config)
    try:
        rows, dead = asyncio.run(_read_status(settings))
    except ConfigError as exc:
        fail(str(exc))
    if not rows:
        Console().print("no flow has reported yet (start one with: interlace flow run NAME)")
        return
    table = Table(
        "flow", "process", "status", "in", "out", "errors", "dead letters", "in flight", "lag", "updated"
    )
    now = time.time()
    for row in rows:
        stats = row["stats"]
        table.add_row(
            row["flow"],
            row["process"],
            row["status"],
            str(stats.get("received", 0)),
            str(stats.get("out", 0)),
            str(stats.get("errors", 0)),
            f"{stats.get('dead_letters', 0)} (stored: {dead.get(row['flow'], 0)})",
            str(stats.get("in_flight", 0)),
            "—" if stats.get("lag") is None else str(stats["lag"]),
            f"{now - row['updated_at']:.0f}s ago",
        )
    Console().print(table)


async def _read_status(settings: Config) -> tuple[list[dict[str, Any]], dict[str, int]]:
    from interlace.flows.build import dead_letter_stream  # noqa: PLC0415
    from interlace.flows.connectors.event_log.sink import count_events  # noqa: PLC0415
    from interlace.flows.state import FlowStateStore  # noqa: PLC0415
    from interlace.store.database import Database, default_database_url  # noqa: PLC0415

    database = Database(settings.state.database_url or default_database_url(settings.state.dir))
    await database.start()
    try:
        rows = await FlowStateStore(database).read()
        dead = {
            name: await count_events(database, dead_letter_stream(name))
            for name in {str(r["flow"]) for r in rows}
        }
    finally:
        await database.aclose()
    return rows, dead


@flow_app.command()
def run(
    names: Annotated[list[str] | None, typer.Argument(help="The flows to run (default: --all).")] = None,
    config: ConfigOption = None,
    run_all: Annotated[bool, typer.Option("--all", help="Run every configured flow.")] = False,
    progress: Annotated[float, typer.Option(min=0.1, help="Seconds between progress lines.")] = 2.0,
    metrics_port: Annotated[
        int | None, typer.Option(min=0, max=65535, help="Serve Prometheus /metrics on 127.0.0.1:PORT.")
    ] = None,
) -> None:
    """Run flows until SIGTERM or Ctrl-C; in-flight messages are drained before exit."""
    from interlace.cli.allocator import map_large_blocks  # noqa: PLC0415
    from interlace.observability.logs import configure_logging  # noqa: PLC0415

    map_large_blocks()  # a long-running process (cli.allocator)

    settings = _settings(config)
    chosen = list(settings.flows) if run_all or not names else names
    worker = settings.jobs.worker.model_copy(update={"enabled": False})  # flows only: no job worker here
    settings = settings.model_copy(update={"jobs": settings.jobs.model_copy(update={"worker": worker})})
    output = configure_logging(settings.observability.logs)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    console = Console(stderr=True)
    try:
        totals = asyncio.run(
            _run(
                settings,
                chosen,
                str(config) if config else "embedded default",
                progress,
                console,
                metrics_port=metrics_port,
            )
        )
    except ConfigError as exc:
        fail(str(exc))
    finally:
        output.close()
    for name, stats in totals.items():
        console.print(f"{name}: stopped · {_line(stats)}", highlight=False)


def _line(stats: FlowStats) -> str:
    return (
        f"in {stats.received} · out {stats.out} · errors {stats.errors} · "
        f"dead letters {stats.dead_letters} · in flight {stats.in_flight}"
    )


async def _run(
    settings: Config,
    names: list[str],
    source: str,
    every: float,
    console: Console,
    *,
    metrics_port: int | None,
) -> dict[str, FlowStats]:
    from interlace.flows.process import FlowProcess  # noqa: PLC0415
    from interlace.runtime import Runtime  # noqa: PLC0415

    runtime = Runtime(settings, config_source=source)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)

    def show(all_stats: dict[str, FlowStats]) -> None:
        for name, stats in all_stats.items():
            console.print(f"{name}: {_line(stats)}", highlight=False)

    process = FlowProcess(runtime, names, report_interval=every, on_progress=show)
    if metrics_port is not None:  # flow metrics (and the AI calls' request metrics) for Prometheus
        from prometheus_client import start_http_server  # noqa: PLC0415

        start_http_server(metrics_port, addr="127.0.0.1", registry=process.metrics.registry)
    await runtime.start()
    console.print(f"flows {', '.join(names)} · {source} · process {process.process}", highlight=False)
    try:
        return await process.run(stop)
    finally:
        await runtime.stop()
