"""The schema of ``interlace.yaml``: one typed model per feature, unknown keys are errors.

Example::

    server:
      host: 127.0.0.1
      port: 8700
    auth:
      master_key: ${INTERLACE_MASTER_KEY}
    models:
      gpt-4o-mini:
        deployments:
          - provider: openai
            model: gpt-4o-mini
            base_url: https://api.openai.com/v1
            api_key: ${OPENAI_API_KEY}
            timeouts: {connect: 5, first_byte: 30, total: 600}
            tags: {region: eu}
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

__all__ = [
    "AuthConfig",
    "Config",
    "DeploymentConfig",
    "LocalModelConfig",
    "ModelConfig",
    "ServerConfig",
    "StateConfig",
    "Timeouts",
]

ProviderKind = Literal["openai", "anthropic", "inference_v2", "local", "fake"]

_ALIAS = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Timeouts(_Strict):
    """Per-deployment deadlines, in seconds."""

    connect: float = Field(5.0, gt=0, description="TCP + TLS connect.")
    first_byte: float = Field(60.0, gt=0, description="From sending the request to the response headers.")
    idle: float = Field(60.0, gt=0, description="Longest silence between two chunks of a stream.")
    total: float = Field(600.0, gt=0, description="The whole attempt, including the body or stream.")


class DeploymentConfig(_Strict):
    """One upstream that serves a model alias."""

    provider: ProviderKind
    model: str = Field(description="The model name the upstream knows.")
    base_url: str | None = Field(None, description="The upstream's API root, e.g. https://api.openai.com/v1.")
    api_key: SecretStr | None = Field(None, description="Always a ${ENV_VAR} reference, never plain text.")
    api_style: Literal["openai", "azure"] = Field(
        "openai", description="'azure' uses deployment paths, ?api-version= and the api-key header."
    )
    api_version: str | None = Field(None, description="Azure OpenAI api-version.")
    headers: dict[str, str] = Field(default_factory=dict, description="Extra headers sent upstream.")
    weight: float = Field(1.0, gt=0)
    timeouts: Timeouts = Field(default_factory=Timeouts)
    max_connections: int = Field(256, ge=1, description="Connection pool size to this upstream.")
    tags: dict[str, str] = Field(default_factory=dict, description="e.g. {region: eu, tier: premium}.")
    options: dict[str, float | int | str | bool] = Field(
        default_factory=dict, description="Provider-specific settings (fake: latency, faults)."
    )

    @model_validator(mode="after")
    def _needs_base_url(self) -> DeploymentConfig:
        if self.provider == "inference_v2" and not self.base_url:
            msg = f"provider '{self.provider}' needs base_url (e.g. http://127.0.0.1:8080)"
            raise ValueError(msg)
        if self.api_style == "azure" and not (self.base_url and self.api_version):
            msg = "api_style 'azure' needs base_url (https://NAME.openai.azure.com) and api_version"
            raise ValueError(msg)
        return self


class ModelConfig(_Strict):
    """A model alias clients ask for, served by one or more deployments."""

    deployments: list[DeploymentConfig] = Field(min_length=1)
    description: str | None = None


class LocalModelConfig(_Strict):
    """The in-process local model (embeddings and zero-shot classification)."""

    max_batch: int = Field(64, ge=1, description="Largest micro-batch of texts in one forward pass.")
    max_wait_ms: float = Field(2.0, ge=0, description="How long a request waits for others to batch with.")
    threads: int | None = Field(None, ge=1, description="torch intra-op threads (default: all cores).")


class ServerConfig(_Strict):
    host: str = "127.0.0.1"
    port: int = Field(8700, ge=0, le=65535)
    max_body_bytes: int = Field(8 * 1024 * 1024, ge=1024, description="Bodies over this answer 413.")
    allow_unauthenticated_public_bind: bool = Field(
        default=False,
        description="Serve on a non-loopback address without authentication. Never in production.",
    )


class AuthConfig(_Strict):
    master_key: SecretStr | None = Field(
        None, description="A bearer key that may call every endpoint; a ${ENV_VAR} reference."
    )

    @property
    def enabled(self) -> bool:
        return self.master_key is not None


class StateConfig(_Strict):
    dir: str = Field(".interlace", description="Where the embedded default keeps its SQLite state.")
    database_url: str | None = Field(
        None,
        description="SQLAlchemy URL; default sqlite+aiosqlite under `dir`. postgresql+asyncpg://… at scale.",
    )


class Config(_Strict):
    server: ServerConfig = Field(default_factory=ServerConfig)
    auth: AuthConfig = Field(default_factory=AuthConfig)
    state: StateConfig = Field(default_factory=StateConfig)
    local: LocalModelConfig = Field(default_factory=LocalModelConfig)
    models: dict[str, ModelConfig] = Field(default_factory=dict)

    @field_validator("models")
    @classmethod
    def _aliases_are_names(cls, models: dict[str, ModelConfig]) -> dict[str, ModelConfig]:
        for alias in models:
            if not _ALIAS.match(alias):
                msg = f"model alias '{alias}' must be 1-128 characters of letters, digits and ._:/-"
                raise ValueError(msg)
        return models
