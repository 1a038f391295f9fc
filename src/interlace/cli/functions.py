"""``interlace functions list | show | test``: AI functions from the command line, no server needed.

``test NAME`` runs the function's golden cases (or those of ``--cases FILE``: a YAML list of cases)
through an in-process runtime built from the configuration — the same router, providers and local
model the gateway would use — and prints each case's result, the pass rate, latency p50/p95 and the
cost. It exits 1 when the pass rate is below ``--threshold`` (default: the function's
``pass_threshold``), so a model or prompt change is checked before it ships::

    interlace functions test ticket_triage --config examples/functions.yaml
    interlace functions test summarise --model gpt-4o-mini-candidate --threshold 0.9
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path  # noqa: TC003 - typer reads the annotations at run time
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from interlace.cli.options import ConfigOption, fail, load_settings
from interlace.core.errors import ConfigError, InterlaceError, ModelNotFound

if TYPE_CHECKING:
    from interlace.config.functions import FunctionCase
    from interlace.config.schema import Config
    from interlace.functions.evaluation import CaseOutcome, EvaluationSummary

__all__ = ["functions_app", "render_summary"]

functions_app = typer.Typer(
    name="functions",
    help="AI functions: list them, show their schemas, run their golden cases.",
    no_args_is_help=True,
)

VersionOption = Annotated[str | None, typer.Option("--version", "-v", help="A version (default: latest).")]


def _settings(config: Path | None) -> Config:
    try:
        return load_settings(config)
    except ConfigError as exc:
        fail(str(exc))


@functions_app.command("list")
def list_functions(config: ConfigOption = None) -> None:
    """Every function and version the configuration defines."""
    from rich.table import Table  # noqa: PLC0415 - what the command needs, only when it runs

    from interlace.functions.registry import FunctionRegistry  # noqa: PLC0415

    registry = FunctionRegistry(_settings(config).functions.definitions)
    table = Table(title="functions")
    for column in ("name", "version", "kind", "model", "cases", "description"):
        table.add_column(column)
    for definition in registry:
        c = definition.config
        table.add_row(c.name, c.version, c.kind, c.model, str(len(c.cases)), c.description or "-")
    Console().print(table)


@functions_app.command("show")
def show(name: str, version: VersionOption = None, config: ConfigOption = None) -> None:
    """A function's description and its input and output schemas, as JSON."""
    from interlace.functions.registry import FunctionRegistry  # noqa: PLC0415 - jsonschema, jinja2

    registry = FunctionRegistry(_settings(config).functions.definitions)
    try:
        definition = registry.get(name, version)
    except InterlaceError as exc:
        fail(exc.message)
    answer = definition.describe()
    answer["versions"] = [d.version for d in registry.versions(name)]
    print(json.dumps(answer, indent=2, ensure_ascii=False))


def _load_cases(path: Path) -> list[FunctionCase]:
    from pydantic import TypeAdapter, ValidationError  # noqa: PLC0415 - only with --cases
    from ruamel.yaml import YAML  # noqa: PLC0415
    from ruamel.yaml.error import YAMLError  # noqa: PLC0415

    from interlace.config.functions import FunctionCase  # noqa: PLC0415

    try:
        data: Any = YAML(typ="safe").load(path.read_text(encoding="utf-8"))
    except (OSError, YAMLError) as exc:
        fail(f"{path}: cannot read the cases ({exc})")
    if isinstance(data, dict):
        data = data.get("cases")
    try:
        return TypeAdapter(list[FunctionCase]).validate_python(data)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in first["loc"])
        fail(f"{path}: cases[{where}]: {first['msg']} (a YAML list of {{input, expect | assertions}})")


@functions_app.command("test")
def run_golden_cases(
    name: str,
    *,
    version: VersionOption = None,
    model: Annotated[
        str | None, typer.Option(help="Run on this model alias instead of the function's.")
    ] = None,
    cases: Annotated[
        Path | None, typer.Option(help="A YAML file of cases (default: the function's).")
    ] = None,
    threshold: Annotated[
        float | None, typer.Option(min=0, max=1, help="Fail below this pass rate (default: pass_threshold).")
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Run a function's golden cases; exit 1 below the pass threshold."""
    from interlace.functions.registry import FunctionRegistry  # noqa: PLC0415 - jsonschema, jinja2

    settings = _settings(config)
    chosen = _load_cases(cases) if cases is not None else None
    console = Console()
    try:
        summary = asyncio.run(
            _run(settings, name, version=version, model=model, cases=chosen, console=console)
        )
    except InterlaceError as exc:
        fail(exc.message)
    render_summary(summary, console)
    definition = FunctionRegistry(settings.functions.definitions).get(name, summary.version)
    bar = definition.config.pass_threshold if threshold is None else threshold
    if not summary.outcomes:
        fail(f"function '{name}' has no cases — add cases: to it or pass --cases FILE", code=1)
    if summary.pass_rate < bar:
        console.print(f"[bold red]✗[/] pass rate {summary.pass_rate:.0%} is below {bar:.0%}")
        raise typer.Exit(code=1)
    console.print(f"[green]✓[/] pass rate {summary.pass_rate:.0%} (threshold {bar:.0%})")


async def _run(
    settings: Config,
    name: str,
    *,
    version: str | None,
    model: str | None,
    cases: list[FunctionCase] | None,
    console: Console,
) -> EvaluationSummary:
    from rich.progress import Progress  # noqa: PLC0415

    from interlace.functions.evaluation import run_cases  # noqa: PLC0415
    from interlace.functions.runner import FunctionRunner  # noqa: PLC0415
    from interlace.runtime import Runtime  # noqa: PLC0415 - the runtime (and torch) only for `test`

    runtime = Runtime(settings, config_source="interlace functions test")
    runner = FunctionRunner.from_config(settings.functions, runtime.router, runtime.gate)
    definition = runner.registry.get(name, version)  # 404 before anything starts
    if model is not None and model not in runtime.router.routes:
        raise ModelNotFound(model, list(runtime.router.routes), param="--model")
    total = len(cases if cases is not None else definition.config.cases)
    await runtime.start(wait_for_models=True)
    try:
        with Progress(console=console, transient=True) as progress:
            task = progress.add_task(f"{name} v{definition.version}", total=total)

            def advance(outcome: CaseOutcome) -> None:
                del outcome
                progress.advance(task)

            return await run_cases(
                runner, name, definition.version, cases=cases, model=model, on_case=advance
            )
    finally:
        await runtime.stop()


def render_summary(summary: EvaluationSummary, console: Console) -> None:
    """Per-case results, then the pass rate, latency p50/p95 and cost."""
    from rich.table import Table  # noqa: PLC0415

    table = Table(title=f"{summary.function} v{summary.version} on {summary.model}")
    for column in ("case", "result", "latency", "confidence", "why"):
        table.add_column(column)
    for outcome in summary.outcomes:
        table.add_row(
            outcome.name,
            "[green]pass[/]" if outcome.passed else "[red]fail[/]",
            f"{outcome.latency_s * 1000:.0f} ms",
            "-" if outcome.confidence is None else f"{outcome.confidence:.2f}",
            "; ".join(outcome.failures) or "-",
        )
    console.print(table)
    console.print(
        f"passed {summary.passed}/{len(summary.outcomes)} ({summary.pass_rate:.0%}) · "
        f"latency p50 {summary.latency(0.5) * 1000:.0f} ms, p95 {summary.latency(0.95) * 1000:.0f} ms · "
        f"cost ${summary.cost_usd:.6f}",
        highlight=False,
    )
