"""Request schemas of the public API: they validate inbound bodies and feed ``/openapi.json``.

They are gates, not carriers: a body that passes is used as the plain dict it arrived as, so fields
we do not model (new OpenAI parameters, vendor extensions) pass through untouched.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = [
    "ChatCompletionRequest",
    "ChatMessage",
    "ClassifyRequestBody",
    "ContentPart",
    "EmbeddingRequestBody",
    "InferenceRequestBody",
    "MessagesRequestBody",
    "Tool",
]


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class ContentPart(_Open):
    type: Literal["text", "image_url", "input_audio", "file", "refusal"]
    text: str | None = None
    image_url: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _has_its_payload(self) -> ContentPart:
        if self.type == "text" and self.text is None:
            msg = "a content part of type 'text' needs a 'text' string"
            raise ValueError(msg)
        if self.type == "image_url" and not (self.image_url and isinstance(self.image_url.get("url"), str)):
            msg = "a content part of type 'image_url' needs image_url.url"
            raise ValueError(msg)
        return self


class FunctionCall(_Open):
    name: str
    arguments: str


class ToolCall(_Open):
    id: str
    type: Literal["function"] = "function"
    function: FunctionCall


class ChatMessage(_Open):
    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[ContentPart] | None = None
    name: str | None = None
    tool_calls: list[ToolCall] | None = None
    tool_call_id: str | None = None

    @model_validator(mode="after")
    def _role_rules(self) -> ChatMessage:
        if self.role == "tool" and not self.tool_call_id:
            msg = "a message with role 'tool' needs tool_call_id"
            raise ValueError(msg)
        if self.role in {"user", "system", "developer"} and self.content is None:
            msg = f"a message with role '{self.role}' needs content"
            raise ValueError(msg)
        if self.role == "assistant" and self.content is None and not self.tool_calls:
            msg = "an assistant message needs content or tool_calls"
            raise ValueError(msg)
        return self


class FunctionDefinition(_Open):
    name: str = Field(pattern=r"^[a-zA-Z0-9_-]{1,64}$")
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class Tool(_Open):
    type: Literal["function"]
    function: FunctionDefinition


class StreamOptions(_Open):
    include_usage: bool | None = None


class ResponseFormat(_Open):
    type: Literal["text", "json_object", "json_schema"]
    json_schema: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _schema_given(self) -> ResponseFormat:
        if self.type == "json_schema" and not (self.json_schema and "name" in self.json_schema):
            msg = "response_format of type 'json_schema' needs json_schema with a name and a schema"
            raise ValueError(msg)
        return self


class ChatCompletionRequest(_Open):
    """``POST /v1/chat/completions`` (OpenAI Chat Completions)."""

    model: str = Field(min_length=1)
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool | None = None
    stream_options: StreamOptions | None = None
    tools: list[Tool] | None = None
    tool_choice: Literal["none", "auto", "required"] | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None
    response_format: ResponseFormat | None = None
    n: int | None = Field(None, ge=1, le=128)
    stop: str | list[str] | None = Field(None)
    seed: int | None = None
    logprobs: bool | None = None
    top_logprobs: int | None = Field(None, ge=0, le=20)
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, ge=0, le=1)
    presence_penalty: float | None = Field(None, ge=-2, le=2)
    frequency_penalty: float | None = Field(None, ge=-2, le=2)
    user: str | None = None

    @model_validator(mode="after")
    def _stop_bounds(self) -> ChatCompletionRequest:
        if isinstance(self.stop, list) and len(self.stop) > 4:  # noqa: PLR2004
            msg = "stop takes at most 4 sequences"
            raise ValueError(msg)
        if self.stream_options is not None and not self.stream:
            msg = "stream_options is only allowed with stream: true"
            raise ValueError(msg)
        return self


class EmbeddingRequestBody(_Open):
    """``POST /v1/embeddings`` (OpenAI Embeddings)."""

    model: str = Field(min_length=1)
    input: str | list[str] | list[int] | list[list[int]]
    dimensions: int | None = Field(None, ge=1)
    encoding_format: Literal["float", "base64"] = "float"
    user: str | None = None

    @model_validator(mode="after")
    def _input_not_empty(self) -> EmbeddingRequestBody:
        if isinstance(self.input, list) and not self.input:
            msg = "input must not be an empty list"
            raise ValueError(msg)
        if self.input == "" or (isinstance(self.input, list) and "" in self.input):
            msg = "input must not contain empty strings"
            raise ValueError(msg)
        return self


class ClassifyRequestBody(BaseModel):
    """``POST /v1/classify``: zero-shot classification into the given labels."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(min_length=1)
    input: str | list[str]
    labels: list[str] = Field(min_length=1, max_length=100)
    multi_label: bool = False


class MessagesRequestBody(_Open):
    """``POST /v1/messages`` (Anthropic Messages); deeper checks happen in translation."""

    model: str = Field(min_length=1)
    messages: list[dict[str, Any]] = Field(min_length=1)
    max_tokens: int = Field(ge=1)
    system: str | list[dict[str, Any]] | None = None
    stream: bool | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: dict[str, Any] | None = None
    stop_sequences: list[str] | None = None
    temperature: float | None = Field(None, ge=0, le=1)
    top_p: float | None = Field(None, ge=0, le=1)
    top_k: int | None = Field(None, ge=0)
    metadata: dict[str, Any] | None = None


class InferenceTensor(_Open):
    name: str
    shape: list[int]
    datatype: str
    data: list[Any] | None = None
    parameters: dict[str, Any] | None = None


class InferenceRequestBody(_Open):
    """``POST /v2/models/{name}/infer`` (Open Inference Protocol v2)."""

    id: str | None = None
    parameters: dict[str, Any] | None = None
    inputs: list[InferenceTensor] = Field(min_length=1)
    outputs: list[dict[str, Any]] | None = None
