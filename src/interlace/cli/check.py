"""``interlace check``: the resolved model table, secrets redacted."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.table import Table

if TYPE_CHECKING:
    from rich.console import Console

    from interlace.config.schema import Config

__all__ = ["print_model_table"]


def print_model_table(config: Config, console: Console) -> None:
    table = Table(title="models", show_lines=False)
    for column in (
        "alias",
        "deployment",
        "provider",
        "upstream model",
        "base url",
        "weight",
        "timeouts",
        "tags",
        "key",
    ):
        table.add_column(column)
    for alias, model in config.models.items():
        for index, deployment in enumerate(model.deployments):
            t = deployment.timeouts
            table.add_row(
                alias,
                f"{alias}/{index}",
                deployment.provider + (" (azure)" if deployment.api_style == "azure" else ""),
                deployment.model,
                deployment.base_url or "-",
                f"{deployment.weight:g}",
                f"connect {t.connect:g}s, first byte {t.first_byte:g}s, idle {t.idle:g}s, total {t.total:g}s",
                ", ".join(f"{k}={v}" for k, v in deployment.tags.items()) or "-",
                "set" if deployment.api_key else "-",
            )
    console.print(table)
    auth = "master key" if config.auth.enabled else "none (loopback only)"
    console.print(
        f"server {config.server.host}:{config.server.port} · auth: {auth} · state: {config.state.dir}"
    )
