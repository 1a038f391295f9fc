"""``interlace serve | check``: the entry point of the command line.

Every command imports what it runs only when it runs: this module and the command modules it
registers import typer and little else at module level, so ``interlace --help`` loads none of the
commands' dependencies. ``interlace serve`` parses its options and replaces itself with the server
(``python -m interlace.cli.serve``), which loads neither the command line nor the subsystems a
configuration leaves off.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from interlace import __version__
from interlace.cli.audit import audit_app
from interlace.cli.events import events_app
from interlace.cli.explain import route_app
from interlace.cli.flow import flow_app
from interlace.cli.functions import functions_app
from interlace.cli.jobs import jobs_app
from interlace.cli.keys import keys_app
from interlace.cli.shadow import shadow_app
from interlace.cli.usage import usage_command
from interlace.cli.worker import worker_command
from interlace.core.errors import ConfigError

__all__ = ["app", "main"]

app = typer.Typer(
    name="interlace",
    help="Interlace: an OpenAI- and Anthropic-compatible AI gateway, flows and workflows.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

app.add_typer(shadow_app)  # interlace shadow report
app.add_typer(route_app)  # interlace route explain
app.add_typer(events_app)  # interlace events replay
app.add_typer(functions_app)  # interlace functions list | show | test
app.add_typer(audit_app)  # interlace audit verify|export
app.add_typer(keys_app)  # interlace keys create|list|show|rotate|revoke
app.command("usage")(usage_command)
app.command("worker")(worker_command)  # interlace worker: runs jobs from the shared queue
app.add_typer(jobs_app)  # interlace jobs list|show|dead|retry|cancel|batches
app.add_typer(flow_app)  # interlace flow list|validate|status|run

ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="interlace.yaml to run; without it, the embedded default."),
]


@app.command()
def serve(
    config: ConfigOption = None,
    host: Annotated[str | None, typer.Option(help="Address to bind (default 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port to bind (default 8700).")] = None,
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            help="Worker processes on the one port, each with its own runtime. State is shared only "
            "through redis when configured: without it rate limits and breakers are per process.",
        ),
    ] = 1,
) -> None:
    """Start the gateway."""
    # the process that serves is a fresh one without the command line (see interlace.cli.serve)
    argv = [sys.executable, *_interpreter_options(), "-m", "interlace.cli.serve", "--workers", str(workers)]
    for flag, value in (("--config", config), ("--host", host), ("--port", port)):
        if value is not None:
            argv += [flag, str(value)]
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, argv)  # noqa: S606 - this interpreter, on this package's own module


def _interpreter_options() -> list[str]:
    """The options this interpreter runs with (-W, -X, -O …), for the process that replaces it."""
    return subprocess._args_from_interpreter_flags()  # type: ignore[attr-defined,no-any-return]  # noqa: SLF001 - multiprocessing's way


@app.command()
def check(
    file: Annotated[
        Path | None, typer.Argument(help="The configuration file (default ./interlace.yaml).")
    ] = None,
) -> None:
    """Validate a configuration file and print the resolved model table."""
    from interlace.cli.check import print_model_table  # noqa: PLC0415 - the schema only when it runs
    from interlace.config.loader import load_config  # noqa: PLC0415

    console = Console()
    path = file or Path("interlace.yaml")
    try:
        settings = load_config(path)
    except ConfigError as exc:
        Console(stderr=True).print(f"[bold red]error:[/] {exc}", highlight=False)
        raise typer.Exit(code=2) from None
    console.print(f"[green]✓[/] {path} is valid")
    print_model_table(settings, console)


@app.command()
def version() -> None:
    """Print the version."""
    print(__version__)


def main() -> None:
    app()
