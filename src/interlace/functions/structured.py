"""Structured output that holds: the chat contract of an ``llm`` function, and checking its answers.

How the schema reaches the model (``structured:``):

- ``json_schema`` — OpenAI-compatible ``response_format: {type: json_schema, json_schema: {name,
  schema, strict}}`` (``strict`` only when the schema satisfies strict mode's rules: every object
  closed with ``additionalProperties: false`` and every property required). Anthropic deployments get it
  too: the Anthropic adapter emulates it with an instruction carrying the schema.
- ``json_object`` — JSON mode, the schema in the system instruction.
- ``instructions`` — no provider feature: the schema in the system instruction only.
- ``auto`` (default) — ``json_schema`` when every deployment of the model is ``openai`` or
  ``anthropic``; ``instructions`` otherwise.

Whatever the mode, every answer is parsed (a surrounding Markdown code fence is tolerated) and validated
against the output schema. An invalid answer is re-asked — the conversation goes on with the answer
and a user message listing the violations — at most ``max_repairs`` times; then the call fails with
:class:`~interlace.core.errors.FunctionOutputInvalid`, carrying the last raw answer and its violations.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from interlace.functions.definition import violations

if TYPE_CHECKING:
    from collections.abc import Collection

    from interlace.functions.definition import FunctionDefinition, Violation

__all__ = [
    "Parsed",
    "chat_body",
    "choose_mode",
    "logprob_confidence",
    "parse_answer",
    "repair_messages",
    "strict_compatible",
]

_NATIVE: Final = frozenset({"openai", "anthropic"})
_FENCE: Final = re.compile(r"^\s*```(?:json)?\s*\n?(.*?)\n?\s*```\s*$", re.DOTALL)


def choose_mode(definition: FunctionDefinition, providers: Collection[str]) -> str:
    """The structured-output mode for a model whose deployments have these provider kinds."""
    mode = definition.config.structured
    if mode != "auto":
        return mode
    return "json_schema" if providers and set(providers) <= _NATIVE else "instructions"


def strict_compatible(schema: Any) -> bool:
    """Whether OpenAI's strict structured-output mode accepts ``schema`` as it is."""
    if isinstance(schema, list):
        return all(strict_compatible(item) for item in schema)
    if not isinstance(schema, dict):
        return True
    if schema.get("type") == "object" or "properties" in schema:
        properties = schema.get("properties") or {}
        if schema.get("additionalProperties") is not False or set(schema.get("required") or ()) != set(
            properties
        ):
            return False
    return all(strict_compatible(value) for key, value in schema.items() if key not in {"enum", "const"})


def _instruction(definition: FunctionDefinition, system: str | None) -> str:
    schema = json.dumps(definition.output_schema, ensure_ascii=False, sort_keys=True)
    parts = [system] if system else []
    if definition.config.description:
        parts.append(f"Task: {definition.config.description}")
    parts.append(
        "Answer with a single JSON object and nothing else (no prose, no code fence). "
        f"It must validate against this JSON Schema:\n{schema}"
    )
    return "\n\n".join(parts)


def chat_body(
    definition: FunctionDefinition, data: dict[str, Any], *, model: str, mode: str
) -> dict[str, Any]:
    """The OpenAI-shaped chat request for one call of ``definition`` on ``data``."""
    config = definition.config
    assert definition.prompt is not None  # an llm function always has one (checked at load)
    system = definition.system.render(data) if definition.system is not None else None
    messages: list[dict[str, Any]] = [{"role": "system", "content": _instruction(definition, system)}]
    for example in config.examples:
        messages.append({"role": "user", "content": definition.prompt.render(example.input)})
        messages.append({"role": "assistant", "content": json.dumps(example.output, ensure_ascii=False)})
    messages.append({"role": "user", "content": definition.prompt.render(data)})
    body: dict[str, Any] = {"model": model, "messages": messages}
    if mode == "json_schema":
        strict = strict_compatible(definition.output_schema)
        body["response_format"] = {
            "type": "json_schema",
            "json_schema": {
                "name": f"{config.name}_output"[:64],
                "schema": definition.output_schema,
                "strict": strict,
            },
        }
    elif mode == "json_object":
        body["response_format"] = {"type": "json_object"}
    generation = config.generation
    for key in ("temperature", "top_p", "max_tokens", "seed"):
        value = getattr(generation, key)
        if value is not None:
            body[key] = value
    if generation.stop:
        body["stop"] = list(generation.stop)
    if config.confidence.logprobs:
        body["logprobs"] = True
    return body


@dataclass(slots=True, frozen=True)
class Parsed:
    """One answer checked: the validated output, or the violations."""

    raw: str
    output: dict[str, Any] | None
    problems: list[Violation]


def parse_answer(definition: FunctionDefinition, answer: dict[str, Any]) -> Parsed:
    """The answer's first choice, parsed as JSON and validated against the output schema."""
    choices = answer.get("choices") or [{}]
    message = choices[0].get("message") or {}
    raw = message.get("content")
    if not isinstance(raw, str) or not raw.strip():
        calls = message.get("tool_calls") or []
        if calls:  # a model that answered through a tool call: its arguments are the answer
            raw = str((calls[0].get("function") or {}).get("arguments") or "")
        else:
            return Parsed("", None, [{"path": "/", "message": "the answer is empty"}])
    text = raw
    fenced = _FENCE.match(text)
    if fenced:
        text = fenced.group(1)
    try:
        value = json.loads(text)
    except ValueError as exc:
        return Parsed(raw, None, [{"path": "/", "message": f"not valid JSON: {exc}"}])
    problems = violations(definition.output_validator, value)
    if problems:
        return Parsed(raw, None, problems)
    if not isinstance(value, dict):
        return Parsed(raw, None, [{"path": "/", "message": "the answer must be a JSON object"}])
    return Parsed(raw, value, [])


def repair_messages(body: dict[str, Any], parsed: Parsed) -> dict[str, Any]:
    """The next request of the re-ask loop: the conversation, the invalid answer and what is wrong."""
    listed = "\n".join(f"- at {p['path']}: {p['message']}" for p in parsed.problems)
    messages = [
        *body["messages"],
        {"role": "assistant", "content": parsed.raw or "(empty)"},
        {
            "role": "user",
            "content": "Your answer does not satisfy the required JSON Schema:\n"
            f"{listed}\nReply again with only the corrected JSON object.",
        },
    ]
    return {**body, "messages": messages}


def logprob_confidence(answer: dict[str, Any]) -> float | None:
    """exp(mean logprob) of the first choice's content tokens, when the answer has logprobs."""
    choices = answer.get("choices") or []
    content = ((choices[0].get("logprobs") or {}).get("content") if choices else None) or []
    values = [float(t["logprob"]) for t in content if isinstance(t, dict) and "logprob" in t]
    if not values:
        return None
    return math.exp(sum(values) / len(values))
