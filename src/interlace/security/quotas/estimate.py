"""What a request may use before it is answered: its tokens, and its worst-case cost.

Reservations are pessimistic. A chat request's prompt is estimated from its messages and tools (about
four characters a token, :func:`~interlace.core.usage.estimate_tokens`; a non-text part such as an image
counts :data:`NON_TEXT_PART_TOKENS`), and its output is what it may produce: ``max_completion_tokens``
or ``max_tokens`` (times ``n``), else the configured default allowance. Embeddings and classification
produce no output tokens; an Open Inference Protocol v2 request counts no tokens (only requests).

The worst-case cost prices those tokens at the most expensive deployment the request could reach: the
alias's own deployments, those of its fallbacks (transitively), and those of every traffic rule that
may send it elsewhere — input at the highest of ``input``/``cached_input``, output at the highest of
``output``/``reasoning``.
"""

from __future__ import annotations

import math
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Final

import orjson

from interlace.core.operations import ChatRequest, ClassifyRequest, EmbeddingRequest
from interlace.core.usage import estimate_tokens

if TYPE_CHECKING:
    from interlace.config.schema import Config
    from interlace.core.operations import ModelRequest

__all__ = ["NON_TEXT_PART_TOKENS", "PriceBook", "output_tokens", "prompt_tokens"]

NON_TEXT_PART_TOKENS: Final = 1105
"""An image or audio part: what OpenAI bills a 2048x2048 high-detail image (a generous bound)."""

_NANOS_PER_TOKEN_AT_ONE_USD_PER_MILLION: Final = Decimal(1000)


def prompt_tokens(op: ModelRequest) -> int:
    """The estimated input tokens of ``op``."""
    if isinstance(op, ChatRequest):
        body = op.body
        total = sum(_message_tokens(m) for m in body.get("messages") or () if isinstance(m, dict))
        for extra in ("tools", "functions", "response_format"):
            if body.get(extra):
                total += estimate_tokens(orjson.dumps(body[extra]).decode())
        return total
    if isinstance(op, EmbeddingRequest):
        return sum(len(item) if isinstance(item, list) else estimate_tokens(item) for item in op.inputs)
    if isinstance(op, ClassifyRequest):
        labels = sum(estimate_tokens(label) for label in op.labels)
        return sum(estimate_tokens(text) for text in op.inputs) + labels
    return 0


def output_tokens(op: ModelRequest, default: int) -> int:
    """The most output tokens ``op`` may produce (``default`` when a chat request sets no bound)."""
    if not isinstance(op, ChatRequest):
        return 0
    body = op.body
    bound = body.get("max_completion_tokens") or body.get("max_tokens")
    limit = bound if isinstance(bound, int) and bound > 0 else default
    choices = body.get("n")
    return limit * (choices if isinstance(choices, int) and choices > 1 else 1)


def _message_tokens(message: dict[str, Any]) -> int:
    content = message.get("content")
    total = 0
    if isinstance(content, str):
        total += estimate_tokens(content)
    elif isinstance(content, list):
        for part in content:
            if isinstance(part, dict) and isinstance(part.get("text"), str):
                total += estimate_tokens(part["text"])
            else:
                total += NON_TEXT_PART_TOKENS
    calls = message.get("tool_calls")
    if calls:
        total += estimate_tokens(orjson.dumps(calls).decode())
    return total


class PriceBook:
    """Per model alias, the highest input and output price of any deployment a request may reach."""

    def __init__(self, config: Config) -> None:
        self._direct = {
            alias: (
                max(_per_token(d.price.input, d.price.cached_input) for d in model.deployments),
                max(_per_token(d.price.output, d.price.reasoning) for d in model.deployments),
            )
            for alias, model in config.models.items()
        }
        self._worst = {alias: self._reachable_max(alias, config) for alias in config.models}

    def worst_case_nanos(self, alias: str, prompt: int, output: int) -> int:
        """The most ``prompt`` input and ``output`` output tokens can cost, in nano-dollars (rounded up)."""
        input_price, output_price = self._worst.get(alias, (Decimal(0), Decimal(0)))
        return math.ceil(prompt * input_price + output * output_price)

    def _reachable_max(self, alias: str, config: Config) -> tuple[Decimal, Decimal]:
        seen: set[str] = set()
        todo = [alias]
        for rule in config.routing.rules:
            if rule.match.model in {None, alias}:
                todo += [rule.model] if rule.model else [arm.model for arm in rule.split]
        while todo:
            name = todo.pop()
            model = config.models.get(name)
            if name in seen or model is None:
                continue
            seen.add(name)
            todo += [*model.fallbacks, *model.context_fallbacks, *model.content_policy_fallbacks]
        prices = [self._direct[name] for name in seen]
        return max((p[0] for p in prices), default=Decimal(0)), max(
            (p[1] for p in prices), default=Decimal(0)
        )


def _per_token(price: float, other: float | None) -> Decimal:
    """Nano-dollars per token of the higher of two USD-per-million prices (as written in the config)."""
    highest = max(price, other or 0.0)
    return Decimal(repr(float(highest))) * _NANOS_PER_TOKEN_AT_ONE_USD_PER_MILLION
