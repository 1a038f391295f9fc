"""Build a provider for a deployment from its ``provider:`` name."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from interlace.providers.fake import FakeProvider
from interlace.providers.inference_v2 import InferenceV2Provider
from interlace.providers.openai import OpenAIProvider

if TYPE_CHECKING:
    from interlace.config.schema import DeploymentConfig
    from interlace.core.provider import Provider
    from interlace.providers.local import SentenceEncoder

__all__ = ["EncoderSource", "build_provider"]


class EncoderSource(Protocol):
    """Hands out the one shared in-process encoder per local model name."""

    def __call__(self, model: str) -> SentenceEncoder: ...


def build_provider(name: str, deployment: DeploymentConfig, *, encoders: EncoderSource) -> Provider:
    kind = deployment.provider
    if kind == "openai":
        return OpenAIProvider(name=name, deployment=deployment)
    if kind == "anthropic":
        from interlace.providers.anthropic import AnthropicProvider  # noqa: PLC0415

        return AnthropicProvider(name=name, deployment=deployment)
    if kind == "inference_v2":
        return InferenceV2Provider(name=name, deployment=deployment)
    if kind == "fake":
        return FakeProvider(name=name, deployment=deployment)
    # the local model pulls in torch: imported only when a local deployment is configured
    from interlace.providers.local import LocalProvider  # noqa: PLC0415

    return LocalProvider(name=name, deployment=deployment, encoder=encoders(deployment.model))
