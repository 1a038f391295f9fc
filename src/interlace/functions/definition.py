"""A function definition, ready to run: its config with compiled templates and schema validators.

The output schema of ``classify`` and ``embed`` functions is fixed by their kind (so clients can be
generated for them like for any other function):

- ``classify``: ``{"label": <one of labels>, "scores": {<label>: number, ...}}`` (``labels``: every
  label at or above 0.5 as well, when ``multi_label``);
- ``embed``: ``{"embedding": [number, ...]}``, or with ``compare``:
  ``{"similarity": number, "duplicate": boolean}``.

Validation errors are reported as ``{"path": "/a/0/b", "message": ...}`` — a JSON pointer into the
document and jsonschema's message — the same shape for input (400) and output (502) problems.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jsonschema import Draft202012Validator  # type: ignore[import-untyped]

    from interlace.config.functions import FunctionConfig
    from interlace.functions.template import PromptTemplate

__all__ = ["FunctionDefinition", "Violation", "component_prefix", "violations"]

Violation = dict[str, str]


def violations(validator: Draft202012Validator, document: Any, *, limit: int = 20) -> list[Violation]:
    """Every schema error of ``document`` (deepest first), as ``{"path", "message"}``."""
    errors = sorted(validator.iter_errors(document), key=lambda e: (-len(e.absolute_path), e.message))
    found: list[Violation] = []
    for error in errors[:limit]:
        path = [str(part) for part in error.absolute_path]
        if error.validator == "required" and isinstance(error.instance, dict):
            # name the missing field itself, not the object that lacks it
            missing = [str(p) for p in error.validator_value if p not in error.instance]
            path += missing[:1]
        elif error.validator == "additionalProperties" and isinstance(error.instance, dict):
            known = error.schema.get("properties") or {}
            path += [str(k) for k in error.instance if k not in known][:1]  # the unexpected field
        found.append({"path": "/" + "/".join(path), "message": error.message})
    return found


def component_prefix(name: str, version: str) -> str:
    """``classify_ticket`` v ``2.1`` → ``ClassifyTicketV2_1`` (OpenAPI component names)."""
    words = [w for w in name.replace("-", "_").split("_") if w]
    return "".join(w[:1].upper() + w[1:] for w in words) + "V" + version.replace(".", "_").replace("-", "_")


def _fixed_output_schema(config: FunctionConfig) -> dict[str, Any]:
    if config.kind == "classify":
        scores = {label: {"type": "number"} for label in config.labels}
        schema: dict[str, Any] = {
            "type": "object",
            "properties": {
                "label": {"type": "string", "enum": list(config.labels)},
                "scores": {"type": "object", "properties": scores, "required": list(config.labels)},
            },
            "required": ["label", "scores"],
        }
        if config.multi_label:
            schema["properties"]["labels"] = {
                "type": "array",
                "items": {"type": "string", "enum": list(config.labels)},
            }
            schema["required"].append("labels")
        return schema
    if config.compare is not None:
        return {
            "type": "object",
            "properties": {"similarity": {"type": "number"}, "duplicate": {"type": "boolean"}},
            "required": ["similarity", "duplicate"],
        }
    return {
        "type": "object",
        "properties": {"embedding": {"type": "array", "items": {"type": "number"}}},
        "required": ["embedding"],
    }


@dataclass(slots=True, eq=False)
class FunctionDefinition:
    """One version of one function, compiled."""

    config: FunctionConfig
    output_schema: dict[str, Any] = field(init=False)
    input_validator: Draft202012Validator = field(init=False)
    output_validator: Draft202012Validator = field(init=False)
    prompt: PromptTemplate | None = field(init=False)
    system: PromptTemplate | None = field(init=False)

    def __post_init__(self) -> None:
        # jsonschema and Jinja2 are imported only by a configuration that defines functions
        from jsonschema import Draft202012Validator  # noqa: PLC0415

        from interlace.functions.template import PromptTemplate  # noqa: PLC0415

        config = self.config
        self.output_schema = (
            config.output_schema
            if config.kind == "llm" and config.output_schema is not None
            else _fixed_output_schema(config)
        )
        self.input_validator = Draft202012Validator(config.input_schema)
        self.output_validator = Draft202012Validator(self.output_schema)
        limit = config.max_prompt_chars
        self.prompt = PromptTemplate(config.prompt, limit=limit) if config.prompt is not None else None
        self.system = PromptTemplate(config.system, limit=limit) if config.system is not None else None

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def version(self) -> str:
        return self.config.version

    @property
    def kind(self) -> str:
        return self.config.kind

    @property
    def input_schema(self) -> dict[str, Any]:
        return self.config.input_schema

    def describe(self) -> dict[str, Any]:
        """What ``GET /v1/functions`` lists for this version."""
        config = self.config
        return {
            "object": "function",
            "name": config.name,
            "version": config.version,
            "description": config.description,
            "kind": config.kind,
            "model": config.model,
            "input_schema": config.input_schema,
            "output_schema": self.output_schema,
            "confidence_threshold": config.confidence.threshold,
        }
