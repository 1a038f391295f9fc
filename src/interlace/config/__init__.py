"""``interlace.yaml``: schema, loader with file:line errors, ``${ENV}`` secrets, the embedded default."""

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
