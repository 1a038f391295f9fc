"""Anthropic Messages API upstreams, translated to and from the canonical OpenAI shape."""

from interlace.providers.anthropic.errors import anthropic_error
from interlace.providers.anthropic.provider import AnthropicProvider

__all__ = ["AnthropicProvider", "anthropic_error"]
