"""The configuration of each built-in step (``steps: [{type: map, …}, …]``).

Expressions are checked at load: CEL (``filter``, ``route``, ``dedupe``) compiles, JSONata (``map``,
``input`` of the AI steps) parses. CEL sees ``payload``, ``key``, ``headers`` and ``id``; JSONata
evaluates over the payload.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from interlace.config._base import Strict
from interlace.config._flow_parts import StepConfigBase
from interlace.config.pii import PiiEntity  # noqa: TC001 - pydantic reads it at runtime

__all__ = [
    "BatchStepConfig",
    "ChatStepConfig",
    "ClassifyStepConfig",
    "DedupeStepConfig",
    "EmbedStepConfig",
    "FilterStepConfig",
    "FunctionStepConfig",
    "MapStepConfig",
    "MaskStepConfig",
    "RouteCase",
    "RouteStepConfig",
    "UnmaskStepConfig",
    "check_cel",
    "check_jsonata",
]


def check_cel(source: str) -> str:
    """``source`` if it compiles as CEL, else ``ValueError`` with the parser's message."""
    import cel  # noqa: PLC0415 - loaded only by configurations that use it

    try:
        cel.compile(source)
    except ValueError as exc:
        msg = f"not a valid CEL expression: {str(exc).splitlines()[0]}"
        raise ValueError(msg) from None
    return source


def check_jsonata(source: str) -> str:
    """``source`` if it parses as JSONata, else ``ValueError`` with the parser's message."""
    import jsonata  # type: ignore[import-untyped]  # noqa: PLC0415

    try:
        jsonata.Jsonata(source)
    except Exception as exc:  # the parser raises its own JException
        msg = f"not a valid JSONata expression: {exc}"
        raise ValueError(msg) from None
    return source


class _AiStep(StepConfigBase):
    input: str | None = Field(
        None, description="JSONata building the call's input from the payload; default the payload."
    )
    into: str | None = Field(
        None, description="Payload field the answer is written to; None replaces the payload."
    )

    @field_validator("input")
    @classmethod
    def _jsonata(cls, value: str | None) -> str | None:
        return check_jsonata(value) if value is not None else None


class FunctionStepConfig(_AiStep):
    """Call an AI function (``functions:``) with the payload (or ``input``) as its input."""

    type: Literal["function"]
    function: str = Field(description="The function's name.")
    version: str | None = Field(None, description="Default: its latest version.")


class ChatStepConfig(_AiStep):
    """One chat completion; ``prompt`` is a sandboxed Jinja2 template over the payload."""

    type: Literal["chat"]
    model: str
    prompt: str = Field(description="The user message, e.g. 'Summarise: {{ text }}'.")
    system: str | None = None
    max_tokens: int | None = Field(None, ge=1)
    temperature: float | None = Field(None, ge=0, le=2)
    into: str | None = "answer"

    @field_validator("prompt", "system")
    @classmethod
    def _template(cls, value: str | None) -> str | None:
        from interlace.config.functions import check_template  # noqa: PLC0415

        if value is not None:
            check_template(value, "the template")
        return value


class EmbedStepConfig(_AiStep):
    """The vector of a text field."""

    type: Literal["embed"]
    model: str
    field: str = Field(description="The payload field holding the text.")
    into: str | None = "embedding"


class ClassifyStepConfig(_AiStep):
    """Zero-shot classification of a text field into ``labels``."""

    type: Literal["classify"]
    model: str
    field: str = Field(description="The payload field holding the text.")
    labels: list[str] = Field(min_length=2)
    multi_label: bool = False
    into: str | None = "classification"


def _default_entities() -> list[PiiEntity]:
    return ["EMAIL_ADDRESS", "PHONE_NUMBER", "CREDIT_CARD", "IBAN_CODE", "SECRET"]


class MaskStepConfig(StepConfigBase):
    """Personal data in string fields replaced by placeholders (``<PERSON_1>``)."""

    type: Literal["mask"]
    fields: list[str] | None = Field(None, description="Payload fields masked; default every string.")
    entities: list[PiiEntity] = Field(
        default_factory=_default_entities,
        min_length=1,
        description="Entity types masked (as under pii.entities; NATIONAL_ID expands).",
    )
    phone_regions: list[str] = Field(
        default_factory=lambda: ["US"], description="Regions phones are parsed for."
    )
    reversible: bool = Field(
        default=False, description="Keep the originals with the message so an 'unmask' step can restore them."
    )
    min_score: float = Field(0.4, ge=0, le=1, description="Detections scoring lower are ignored.")


class UnmaskStepConfig(StepConfigBase):
    """Put back what a reversible ``mask`` step replaced (in every string of the payload)."""

    type: Literal["unmask"]


class MapStepConfig(StepConfigBase):
    """A JSONata expression over the payload; its value is the new payload (or goes ``into`` a field)."""

    type: Literal["map"]
    expression: str
    into: str | None = None

    @field_validator("expression")
    @classmethod
    def _jsonata(cls, value: str) -> str:
        return check_jsonata(value)


class FilterStepConfig(StepConfigBase):
    """Keep the messages for which the CEL ``expression`` is true."""

    type: Literal["filter"]
    expression: str

    @field_validator("expression")
    @classmethod
    def _cel(cls, value: str) -> str:
        return check_cel(value)


class RouteCase(Strict):
    when: str = Field(description="CEL predicate.")
    sink: str = Field(description="A name under the flow's sinks:.")

    @field_validator("when")
    @classmethod
    def _cel(cls, value: str) -> str:
        return check_cel(value)


class RouteStepConfig(StepConfigBase):
    """Content-based routing: the first case whose predicate holds picks the sink."""

    type: Literal["route"]
    cases: list[RouteCase] = Field(min_length=1)
    default: str | None = Field(
        None, description="The sink when no case matches; default the flow's default_sink."
    )


class DedupeStepConfig(StepConfigBase):
    """Drop a message whose key was already delivered within ``window`` seconds."""

    type: Literal["dedupe"]
    key: str = Field("id", description="CEL expression of the key, e.g. 'payload.order_id'.")
    window: float = Field(3600.0, gt=0, description="Seconds a delivered key is remembered.")
    store: Literal["memory", "redis"] = Field(
        "memory", description="redis (the top-level redis:) shares the window across flow processes."
    )

    @field_validator("key")
    @classmethod
    def _cel(cls, value: str) -> str:
        return check_cel(value)


class BatchStepConfig(StepConfigBase):
    """Group up to ``size`` messages (or what ``window`` seconds gathered) into one AI call."""

    type: Literal["batch"]
    size: int = Field(16, ge=1, le=4096)
    window: float = Field(1.0, gt=0, description="Seconds the first message of a batch waits at most.")
    step: EmbedStepConfig | ClassifyStepConfig = Field(
        discriminator="type", description="The batched call: embed or classify."
    )
