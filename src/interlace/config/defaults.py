"""The embedded default: no external service, SQLite state and the local model."""

from __future__ import annotations

from interlace.config.schema import Config, DeploymentConfig, ModelConfig

__all__ = ["LOCAL_MODEL_ALIAS", "embedded_default"]

LOCAL_MODEL_ALIAS = "minilm"


def embedded_default() -> Config:
    """What ``interlace serve`` runs when no configuration file is given."""
    local = DeploymentConfig(provider="local", model="all-MiniLM-L6-v2")
    return Config(
        models={
            LOCAL_MODEL_ALIAS: ModelConfig(
                deployments=[local],
                description=(
                    "all-MiniLM-L6-v2 on this machine: embeddings (384 dimensions) "
                    "and zero-shot classification"
                ),
            )
        }
    )
