"""What several commands share: the ``--config`` option and loading it (or the embedded default)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer
from rich.console import Console

if TYPE_CHECKING:
    from interlace.config.schema import Config

__all__ = ["ConfigOption", "fail", "load_settings"]

ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="interlace.yaml to read; without it, the embedded default."),
]


def load_settings(path: Path | None) -> Config:
    """The configuration at ``path``, or the embedded default; raises ConfigError."""
    from interlace.config.defaults import embedded_default  # noqa: PLC0415 - the schema when loading
    from interlace.config.loader import load_config  # noqa: PLC0415

    return load_config(path) if path is not None else embedded_default()


def fail(message: str, *, code: int = 2) -> NoReturn:
    """Print ``message`` as an error on stderr and exit with ``code``."""
    Console(stderr=True).print(f"[bold red]error:[/] {message}", highlight=False)
    raise typer.Exit(code=code)
