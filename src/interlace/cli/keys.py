"""``interlace keys create | list | show | rotate | revoke``: virtual API keys, on the configured database.

The commands write the ``api_keys`` table directly (no gateway needs to run); running gateways see a new
key at its first use and a revocation within ``auth.key_cache.refresh_interval``. A key's secret is
printed once, by ``create`` and ``rotate``: it is stored only as a hash.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.console import Console

from interlace.cli.usage import ConfigOption, database_for, load_settings
from interlace.core.errors import InterlaceError

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from pydantic import ValidationError

    from interlace.config.schema import Config
    from interlace.security.keys import ApiKey, IssuedKey, KeyStore

__all__ = ["keys_app"]

T = TypeVar("T")

keys_app = typer.Typer(
    name="keys",
    help="Virtual API keys: create, list, show, rotate, revoke (on the configured database).",
    no_args_is_help=True,
)

_OPTION_OF = {
    "name": "--name",
    "tenant": "--tenant",
    "team": "--team",
    "subject": "--subject",
    "models": "--model",
    "endpoints": "--endpoint",
    "expires_in": "--expires",
    "metadata": "--meta",
    "limits.rpm": "--rpm",
    "limits.tpm": "--tpm",
    "limits.budget_usd": "--budget",
    "limits.soft_budget_usd": "--soft-budget",
    "limits.budget_period": "--budget-period",
    "grace": "--grace",
}


def _fail(message: str) -> typer.Exit:
    Console(stderr=True).print(f"[bold red]error:[/] {message}", highlight=False)
    return typer.Exit(code=2)


def _invalid(exc: ValidationError) -> typer.Exit:
    problems = []
    for error in exc.errors(include_url=False):
        field = ".".join(str(p) for p in error["loc"] if not str(p).startswith(("str", "float", "int")))
        option = _OPTION_OF.get(field, _OPTION_OF.get(field.split(".")[0], field))
        problems.append(f"{option}: {str(error['msg']).removeprefix('Value error, ')}")
    return _fail("; ".join(problems))


def _run(settings: Config, work: Callable[[KeyStore], Awaitable[T]]) -> T:
    from interlace.security.keys import KeyStore  # noqa: PLC0415 - SQLAlchemy only when a command runs

    async def run() -> T:
        database = database_for(settings)
        await database.start()
        try:
            return await work(KeyStore(database))
        finally:
            await database.aclose()

    try:
        return asyncio.run(run())
    except InterlaceError as exc:
        raise _fail(str(exc)) from None


def _print_secret(issued: IssuedKey, console: Console, verb: str) -> None:
    key = issued.key
    console.print(f"[green]✓[/] {verb} API key [bold]{key.id}[/] ({key.name}) for tenant {key.tenant}")
    console.print(issued.token, soft_wrap=True, highlight=False)
    console.print("[yellow]Store this key now: it is shown only once (Interlace keeps only its hash).[/]")


def _meta(pairs: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise _fail(f"--meta {pair!r}: write NAME=VALUE, e.g. --meta owner=ana@example.com")
        out[name] = value
    return out


@keys_app.command("create")
def create_command(
    *,
    tenant: Annotated[str, typer.Option(help="The owner tenant (required: every key belongs to one).")],
    name: Annotated[str, typer.Option(help="A label for people.")],
    config: ConfigOption = None,
    team: Annotated[str | None, typer.Option(help="The team within the tenant.")] = None,
    subject: Annotated[str | None, typer.Option(help="The person the key is for.")] = None,
    model: Annotated[
        list[str] | None, typer.Option("--model", help="A model alias it may use (repeat).")
    ] = None,
    endpoint: Annotated[
        list[str] | None, typer.Option("--endpoint", help="An endpoint family it may call (repeat).")
    ] = None,
    expires: Annotated[str | None, typer.Option(help="Lifetime from now: 3600, 15m, 1h, 30d, 2w.")] = None,
    rpm: Annotated[int | None, typer.Option(help="Requests per minute.")] = None,
    tpm: Annotated[int | None, typer.Option(help="Tokens per minute.")] = None,
    budget: Annotated[float | None, typer.Option(help="Hard spend limit (USD) per budget period.")] = None,
    soft_budget: Annotated[float | None, typer.Option(help="Alert past this spend (USD) per period.")] = None,
    budget_period: Annotated[str, typer.Option(help="day, month or total.")] = "month",
    meta: Annotated[list[str] | None, typer.Option("--meta", help="NAME=VALUE metadata (repeat).")] = None,
) -> None:
    """Create a key and print its secret (once)."""
    from pydantic import ValidationError  # noqa: PLC0415

    from interlace.security.keys import KeySpec  # noqa: PLC0415

    data: dict[str, Any] = {
        "name": name,
        "tenant": tenant,
        "team": team,
        "subject": subject,
        "models": model or None,
        "endpoints": endpoint or None,
        "expires_in": expires,
        "metadata": _meta(meta or []),
        "limits": {
            "rpm": rpm,
            "tpm": tpm,
            "budget_usd": budget,
            "soft_budget_usd": soft_budget,
            "budget_period": budget_period,
        },
    }
    try:
        spec = KeySpec.model_validate(data)
    except ValidationError as exc:
        raise _invalid(exc) from None
    issued = _run(load_settings(config, Console(stderr=True)), lambda store: store.create(spec))
    _print_secret(issued, Console(), "created")


@keys_app.command("list")
def list_command(
    config: ConfigOption = None,
    tenant: Annotated[str | None, typer.Option(help="Only this tenant's keys.")] = None,
    team: Annotated[str | None, typer.Option(help="Only this team's keys.")] = None,
    all_keys: Annotated[bool, typer.Option("--all", help="Include revoked keys.")] = False,
) -> None:
    """List keys (never their secrets)."""
    from rich.table import Table  # noqa: PLC0415

    settings = load_settings(config, Console(stderr=True))
    keys = _run(settings, lambda store: store.list_keys(tenant=tenant, team=team, include_revoked=all_keys))
    console = Console()
    if not keys:
        console.print("no API keys" + (" (revoked ones hidden: --all shows them)" if not all_keys else ""))
        return
    table = Table(title=f"API keys · {len(keys)}")
    for column in ("id", "name", "tenant", "team", "status", "models", "endpoints", "limits", "expires"):
        table.add_column(column, no_wrap=column == "id")
    for key in keys:
        shown = key.public()
        table.add_row(
            key.id,
            key.name,
            key.tenant,
            key.team or "-",
            shown["status"],
            ", ".join(shown["models"] or ["*"]),
            ", ".join(shown["endpoints"] or ["*"]),
            _limits(key),
            shown["expires_at"] or "never",
        )
    console.print(table)


@keys_app.command("show")
def show_command(
    key_id: Annotated[str, typer.Argument(help="The key's id (ik_…).")], config: ConfigOption = None
) -> None:
    """Show one key (never its secret)."""
    from rich.table import Table  # noqa: PLC0415

    settings = load_settings(config, Console(stderr=True))
    key = _run(settings, lambda store: store.require(key_id))
    table = Table(show_header=False, title=f"API key {key.id}")
    for name, value in key.public().items():
        if name != "object":
            table.add_row(name, _cell(value))
    Console().print(table)


@keys_app.command("rotate")
def rotate_command(
    key_id: Annotated[str, typer.Argument(help="The key's id (ik_…).")],
    config: ConfigOption = None,
    grace: Annotated[
        str, typer.Option(help="How long the old secret keeps working: 0 (default), 15m, 1h, 1d.")
    ] = "0",
) -> None:
    """Issue a new secret for a key (same id, scopes and limits) and print it (once)."""
    from pydantic import ValidationError  # noqa: PLC0415

    from interlace.security.keys import RotateSpec  # noqa: PLC0415

    try:
        spec = RotateSpec.model_validate({"grace": grace})
    except ValidationError as exc:
        raise _invalid(exc) from None
    settings = load_settings(config, Console(stderr=True))
    issued = _run(settings, lambda store: store.rotate(key_id, grace=spec.grace_period()))
    console = Console()
    _print_secret(issued, console, "rotated")
    until = issued.key.previous_expires_at
    if until is not None:
        console.print(f"the previous secret keeps working until {until.isoformat()}")


@keys_app.command("revoke")
def revoke_command(
    key_id: Annotated[str, typer.Argument(help="The key's id (ik_…).")], config: ConfigOption = None
) -> None:
    """Revoke a key: refused at once here, by running gateways within their key-cache refresh."""
    settings = load_settings(config, Console(stderr=True))
    key = _run(settings, lambda store: store.revoke(key_id))
    Console().print(f"[green]✓[/] revoked API key [bold]{key.id}[/] ({key.name}) of tenant {key.tenant}")


def _limits(key: ApiKey) -> str:
    limits = key.limits
    parts = [
        f"{limits.rpm} rpm" if limits.rpm else "",
        f"{limits.tpm} tpm" if limits.tpm else "",
        f"${limits.budget_usd:g}/{limits.budget_period}" if limits.budget_usd is not None else "",
    ]
    return ", ".join(p for p in parts if p) or "-"


def _cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in value.items() if v is not None) or "-"
    return str(value)
