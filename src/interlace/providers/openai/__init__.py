"""OpenAI-compatible upstreams (OpenAI, Azure OpenAI, vLLM, Ollama, llama.cpp, TGI)."""

from interlace.providers.openai.errors import openai_error
from interlace.providers.openai.provider import OpenAIProvider

__all__ = ["OpenAIProvider", "openai_error"]
