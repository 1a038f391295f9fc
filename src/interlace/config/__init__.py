"""``interlace.yaml``: schema, loader with file:line errors, ``${ENV}`` secrets, the embedded default.

The names below are loaded on first use: the schema pulls in every feature's configuration (flow
connectors included, whose own config modules build on :mod:`interlace.config._base`), so importing
a piece of this package must not import the whole schema first.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from interlace.config.defaults import embedded_default
    from interlace.config.loader import ConfigErrors, load_config, parse_config
    from interlace.config.schema import Config, DeploymentConfig, ModelConfig

__all__ = [
    "Config",
    "ConfigErrors",
    "DeploymentConfig",
    "ModelConfig",
    "embedded_default",
    "load_config",
    "parse_config",
]

_HOME = {
    "Config": "schema",
    "DeploymentConfig": "schema",
    "ModelConfig": "schema",
    "ConfigErrors": "loader",
    "load_config": "loader",
    "parse_config": "loader",
    "embedded_default": "defaults",
}


def __getattr__(name: str) -> Any:
    home = _HOME.get(name)
    if home is None:
        msg = f"module 'interlace.config' has no attribute {name!r}"
        raise AttributeError(msg)
    return getattr(importlib.import_module(f"interlace.config.{home}"), name)
