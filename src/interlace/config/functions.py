"""``functions:``: AI functions — typed, versioned endpoints over a prompt, a classifier or an embedder.

A function is a facade a legacy system calls with its own payload (``POST /v1/functions/NAME``) and
an anti-corruption layer: its answer is validated against the output schema, never passed on raw.
Definitions are written inline (a list, or a mapping by name) and/or in files named by ``include:``
(globs relative to the configuration file; each file holds one definition, a list, or a mapping)::

    functions:
      include: [functions/*.yaml]
      classify_ticket:
        version: "2"
        kind: classify
        model: minilm
        field: text
        labels: [billing, shipping, account]
        input_schema: {type: object, required: [text], properties: {text: {type: string}}}
        confidence: {threshold: 0.5}
        cases:
          - input: {text: "I was charged twice"}
            assertions: [{label: billing}]

Kinds:

- ``llm``: the ``prompt`` template (sandboxed Jinja2 over the input) is sent to a chat model with the
  ``output_schema`` as its structured-output contract; invalid answers are re-asked ``max_repairs`` times.
- ``classify``: the ``field`` (or the rendered ``prompt``) is classified into ``labels`` by a
  classification model (the local zero-shot classifier); output ``{label, scores}``.
- ``embed``: the vector of ``field``; with ``compare: [a, b]`` the cosine similarity of two fields and
  whether it reaches ``duplicate_threshold`` (a duplicate detector); output ``{embedding}`` or
  ``{similarity, duplicate}``.

Everything that can be checked without a network is checked at load: schemas are valid JSON Schema
(Draft 2020-12), templates compile in the sandbox, classify functions have labels, embed functions name
an input field, and (by the loader) the model alias exists.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field, model_validator

from interlace.config._base import Strict

__all__ = [
    "Assertion",
    "ConfidenceConfig",
    "FunctionCase",
    "FunctionConfig",
    "FunctionExample",
    "FunctionShadow",
    "FunctionsConfig",
    "GenerationConfig",
    "check_json_schema",
    "check_template",
]

FunctionKind = Literal["llm", "classify", "embed"]
StructuredMode = Literal["auto", "json_schema", "json_object", "instructions"]

_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")
_VERSION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$")


def check_json_schema(schema: dict[str, Any], what: str) -> None:
    """Raise ``ValueError`` unless ``schema`` is a valid Draft 2020-12 JSON Schema."""
    from jsonschema import Draft202012Validator  # type: ignore[import-untyped]  # noqa: PLC0415
    from jsonschema.exceptions import SchemaError  # type: ignore[import-untyped]  # noqa: PLC0415

    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        where = "/".join(str(p) for p in exc.absolute_path) or "(root)"
        msg = f"{what} is not a valid JSON Schema (Draft 2020-12) at {where}: {exc.message}"
        raise ValueError(msg) from None


def check_template(source: str, what: str) -> None:
    """Raise ``ValueError`` unless ``source`` compiles as a sandboxed Jinja2 template."""
    from interlace.functions.template import compile_template  # noqa: PLC0415

    try:
        compile_template(source)
    except ValueError as exc:
        msg = f"{what} does not compile: {exc}"
        raise ValueError(msg) from None


class GenerationConfig(Strict):
    """Sampling settings sent with each chat call of an ``llm`` function."""

    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, gt=0, le=1)
    max_tokens: int | None = Field(None, ge=1)
    seed: int | None = None
    stop: list[str] = Field(default_factory=list)


class ConfidenceConfig(Strict):
    """How sure an answer is, and what happens below ``threshold``."""

    field: str | None = Field(
        None, description="llm: the output field (0..1) the model fills with its confidence."
    )
    logprobs: bool = Field(
        default=False, description="llm: confidence = exp(mean token logprob) of the answer."
    )
    threshold: float | None = Field(
        None, ge=0, le=1, description="Below it the answer is flagged needs_review (or re-run on fallback)."
    )
    fallback_model: str | None = Field(
        None, description="Below the threshold, run once more on this model alias and keep its answer."
    )


class FunctionExample(Strict):
    """A few-shot example: an input and the output the model should give for it (llm)."""

    input: dict[str, Any]
    output: dict[str, Any]


class Assertion(Strict):
    """One check of a golden case; exactly one of the kind keys is given.

    ``path`` (``a.b[0]`` or a JSON pointer ``/a/b/0``) selects a part of the output (default: all of it).
    """

    path: str | None = None
    exact: Any = Field(None, description="The value equals this exactly.")
    subset: dict[str, Any] | None = Field(None, description="The object contains these keys and values.")
    regex: str | None = Field(None, description="The value (as text) matches this regular expression.")
    json_schema: dict[str, Any] | None = Field(None, description="The value validates against this schema.")
    label: str | None = Field(None, description="classify: the top label is this.")
    similar_to: str | None = Field(
        None, description="The value (as text) is close to this text by embedding cosine similarity."
    )
    min_similarity: float = Field(0.8, ge=-1, le=1)
    at_least: float | None = Field(None, description="The value (a number) is at least this.")
    at_most: float | None = Field(None, description="The value (a number) is at most this.")

    @model_validator(mode="after")
    def _one_kind(self) -> Assertion:
        kinds = [
            name
            for name in ("subset", "regex", "json_schema", "label", "similar_to", "at_least", "at_most")
            if getattr(self, name) is not None
        ]
        if "exact" in self.model_fields_set:
            kinds.append("exact")
        if len(kinds) != 1 and set(kinds) != {"at_least", "at_most"}:
            msg = (
                "an assertion needs exactly one of exact, subset, regex, json_schema, label, similar_to, "
                f"at_least/at_most (got {', '.join(kinds) or 'none'})"
            )
            raise ValueError(msg)
        if self.json_schema is not None:
            check_json_schema(self.json_schema, "json_schema")
        if self.regex is not None:
            try:
                re.compile(self.regex)
            except re.error as exc:
                msg = f"regex {self.regex!r} does not compile: {exc}"
                raise ValueError(msg) from None
        return self


class FunctionShadow(Strict):
    """Run a sample of this version's calls again on a candidate version, in the background.

    The candidate version is not live while it is a shadow target: ``POST /v1/functions/NAME`` keeps
    serving the highest version nobody shadows to (the candidate is still callable by its version path).
    Both outputs are recorded side by side for ``interlace shadow report``.
    """

    version: str = Field(description="The candidate version.")
    sample: float = Field(1.0, ge=0, le=1, description="Share of successful calls mirrored.")


class FunctionCase(Strict):
    """A golden case: an input and what its output must be (``expect``: exactly) or satisfy."""

    name: str | None = None
    input: dict[str, Any]
    expect: dict[str, Any] | None = Field(None, description="The whole output equals this.")
    assertions: list[Assertion] = Field(default_factory=list)

    @model_validator(mode="after")
    def _checks_something(self) -> FunctionCase:
        if self.expect is None and not self.assertions:
            msg = "a case needs expect: or assertions:"
            raise ValueError(msg)
        return self


class FunctionConfig(Strict):
    """One version of one AI function."""

    name: str = Field(description="The endpoint name: POST /v1/functions/NAME.")
    version: str = Field("1", description="Latest = highest version (numeric/semantic ordering).")
    description: str = ""
    kind: FunctionKind = "llm"
    model: str = Field(description="The model alias that serves it.")
    input_schema: dict[str, Any] = Field(
        default_factory=lambda: {"type": "object"}, description="JSON Schema of the request body."
    )
    output_schema: dict[str, Any] | None = Field(
        None, description="llm: JSON Schema of the answer (required). classify/embed: fixed by the kind."
    )
    system: str | None = Field(None, description="llm: a system prompt template.")
    prompt: str | None = Field(
        None, description="The prompt template over the input (llm: required; classify: the text)."
    )
    examples: list[FunctionExample] = Field(default_factory=list)
    generation: GenerationConfig = Field(default_factory=GenerationConfig)
    structured: StructuredMode = Field(
        "auto",
        description="auto: the provider's JSON-schema mode where it has one, else instructions.",
    )
    max_repairs: int = Field(2, ge=0, le=5, description="Re-asks after an invalid answer.")
    max_prompt_chars: int = Field(100_000, ge=1, description="A rendered prompt past this is a 400.")
    confidence: ConfidenceConfig = Field(default_factory=ConfidenceConfig)
    labels: list[str] = Field(default_factory=list, description="classify: the labels.")
    multi_label: bool = False
    field: str | None = Field(None, description="classify/embed: the input field holding the text.")
    compare: list[str] | None = Field(
        None, description="embed: two input fields whose similarity is the output (duplicate detector)."
    )
    duplicate_threshold: float = Field(0.8, ge=-1, le=1, description="embed with compare.")
    cases: list[FunctionCase] = Field(default_factory=list, description="Golden cases.")
    shadow: FunctionShadow | None = Field(
        None, description="Mirror a sample of calls to a candidate version (shadow runs)."
    )
    pass_threshold: float = Field(
        1.0, ge=0, le=1, description="`interlace functions test` fails below this pass rate."
    )

    @model_validator(mode="after")
    def _consistent(self) -> FunctionConfig:
        if not _NAME.match(self.name):
            msg = f"function name '{self.name}' must be a letter then up to 63 letters, digits, _ or -"
            raise ValueError(msg)
        if not _VERSION.match(self.version):
            msg = f"version '{self.version}' must be 1-32 letters, digits and ._- (e.g. 1, 2.1.0)"
            raise ValueError(msg)
        check_json_schema(self.input_schema, "input_schema")
        if self.output_schema is not None:
            check_json_schema(self.output_schema, "output_schema")
        for what, source in (("system", self.system), ("prompt", self.prompt)):
            if source is not None:
                check_template(source, what)
        if self.kind == "llm":
            self._check_llm()
        elif self.kind == "classify":
            if len(self.labels) < 2:  # noqa: PLR2004
                msg = "a classify function needs labels: at least two"
                raise ValueError(msg)
            if (self.field is None) == (self.prompt is None):
                msg = "a classify function needs exactly one of field: (the input text) or prompt:"
                raise ValueError(msg)
        else:
            self._check_embed()
        return self

    def _check_llm(self) -> None:
        if self.output_schema is None:
            msg = "an llm function needs output_schema: (the JSON Schema of its answer)"
            raise ValueError(msg)
        if self.prompt is None:
            msg = "an llm function needs prompt: (a template over the input, e.g. 'Summarise {{ text }}')"
            raise ValueError(msg)
        if self.confidence.field is not None and self.confidence.field not in (
            self.output_schema.get("properties") or {}
        ):
            msg = f"confidence.field '{self.confidence.field}' is not a property of output_schema"
            raise ValueError(msg)

    def _check_embed(self) -> None:
        if self.compare is not None:
            if len(self.compare) != 2 or self.field is not None:  # noqa: PLR2004
                msg = "compare: names exactly two input fields (and then field: is not used)"
                raise ValueError(msg)
        elif self.field is None:
            msg = "an embed function needs field: (the input field to embed) or compare: [a, b]"
            raise ValueError(msg)
        properties = self.input_schema.get("properties") or {}
        for name in self.compare or [self.field or ""]:
            if properties and name not in properties:
                msg = f"'{name}' is not a property of input_schema"
                raise ValueError(msg)


class FunctionsConfig(Strict):
    """Every function definition; the loader turns the list/mapping/include forms into this."""

    include: list[str] = Field(
        default_factory=list, description="Globs of definition files, relative to the configuration file."
    )
    definitions: list[FunctionConfig] = Field(default_factory=list)
    embedding_model: str = Field("minilm", description="The model alias similarity assertions embed with.")

    @model_validator(mode="after")
    def _unique(self) -> FunctionsConfig:
        seen: set[tuple[str, str]] = set()
        for definition in self.definitions:
            key = (definition.name, definition.version)
            if key in seen:
                msg = f"function '{definition.name}' version '{definition.version}' is defined twice"
                raise ValueError(msg)
            seen.add(key)
        for definition in self.definitions:
            shadow = definition.shadow
            if shadow is not None and (
                (definition.name, shadow.version) not in seen or shadow.version == definition.version
            ):
                msg = (
                    f"function '{definition.name}' version '{definition.version}' shadows to version "
                    f"'{shadow.version}', which is not another version of it"
                )
                raise ValueError(msg)
        return self
