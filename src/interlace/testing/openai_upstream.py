"""An OpenAI-compatible fake upstream: chat completions, embeddings, models and Azure OpenAI paths.

An honest fake of the upstream boundary (see :mod:`interlace.testing.faults`): it speaks the wire
protocol the real API speaks, validates what the real API rejects (a ``tool`` message that answers no
tool call, ``stream_options`` without ``stream``, a missing Azure ``api-version``), and answers with a
deterministic *echo model*:

- the reply is the :mod:`~interlace.testing.echo` model's answer to the last message's text when it
  comes from the user or a tool (else to the last user message), in JSON mode for a ``response_format``
  of ``json_object`` or ``json_schema``; ``stop`` and ``max_tokens`` (or ``max_completion_tokens``) cut
  it (finish_reason ``"stop"`` / ``"length"``);
- with ``tools``, a last *user* message saying ``call <name>`` calls that tool (finish_reason
  ``"tool_calls"``); a named or ``"required"`` ``tool_choice`` forces a call, ``"none"`` forbids one;
- ``n`` identical choices; ``logprobs``/``top_logprobs`` give a deterministic logprobs structure;
- usage counts words: the messages' text for ``prompt_tokens``, the reply (or the tool calls' names and
  arguments) for ``completion_tokens``; ``prompt_tokens_details.cached_tokens`` is always 0.

Streams send a role chunk, one chunk per word (or per 8 characters of tool arguments), a finish chunk
per choice, a ``choices: []`` usage chunk when ``stream_options.include_usage``, then ``data: [DONE]``.
Embeddings are unit vectors derived from a hash of each input (8 dimensions unless ``dimensions``),
exact in float32 so ``encoding_format: base64`` (little-endian float32) decodes to the same numbers.

Azure OpenAI paths (``/openai/deployments/{deployment}/...?api-version=``) answer like Azure, with
``prompt_filter_results`` and a first stream chunk that has no choices.
"""

from __future__ import annotations

import base64
import itertools
import re
import struct
import time
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final

import orjson

from interlace.testing.echo import (
    EchoText,
    continue_echo,
    count_tokens,
    echo_text,
    embedding_vector,
    message_text,
    tool_calls_in,
)
from interlace.testing.exchange import (
    Exchange,
    RejectionError,
    Route,
    RouteSpec,
    UpstreamApp,
    match_route,
    sse,
)
from interlace.testing.faults import NORMAL, Fault
from interlace.testing.replies import ReplyScript

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["OpenAIUpstream"]

_FINGERPRINT: Final = "fp_interlace_echo"
_ROLES: Final = frozenset({"system", "developer", "user", "assistant", "tool", "function"})
_ARG_PIECE: Final = 8
_MIN_SERVER_ERROR: Final = 500
_INT_BOUNDS: Final = MappingProxyType(
    {  # field -> (min, max) the real API accepts
        "n": (1, 128),
        "max_tokens": (1, 2**31),
        "max_completion_tokens": (1, 2**31),
        "top_logprobs": (0, 20),
        "dimensions": (1, 4096),
    }
)
_COMPLETION_DETAILS: Final = (
    "reasoning_tokens",
    "audio_tokens",
    "accepted_prediction_tokens",
    "rejected_prediction_tokens",
)
_KNOWN_ERRORS: Final = MappingProxyType(
    {  # code -> (type, param, message)
        "context_length_exceeded": (
            "invalid_request_error",
            "messages",
            (
                "This model's maximum context length is 128000 tokens. However, your messages resulted "
                "in more tokens. Please reduce the length of the messages."
            ),
        ),
        "content_filter": (
            "invalid_request_error",
            "prompt",
            "The response was filtered: the prompt triggered Azure OpenAI's content management policy.",
        ),
    }
)
_STATUS_ERRORS: Final = MappingProxyType(
    {  # status -> (type, code, message)
        400: ("invalid_request_error", None, "Invalid request."),
        401: ("invalid_request_error", "invalid_api_key", "Incorrect API key provided."),
        403: ("permission_error", None, "You are not allowed to sample from this model."),
        404: (
            "invalid_request_error",
            "model_not_found",
            "The model does not exist or you cannot access it.",
        ),
        429: ("requests", "rate_limit_exceeded", "Rate limit reached for requests. Please try again later."),
        500: (
            "server_error",
            None,
            "The server had an error while processing your request. Sorry about that!",
        ),
        503: ("server_error", None, "The server is overloaded or not ready yet."),
    }
)


def _logprob(token: str, top: int) -> dict[str, Any]:
    value = -round(0.01 * (len(token.strip()) % 7 + 1), 4)
    alternatives = [(token, value)] + [(f"{token}#{k}", value - k) for k in range(1, top)]
    top_logprobs = [{"token": t, "logprob": v, "bytes": list(t.encode())} for t, v in alternatives[:top]]
    return {"token": token, "logprob": value, "bytes": list(token.encode()), "top_logprobs": top_logprobs}


def _filter_results() -> dict[str, Any]:
    return {
        name: {"filtered": False, "severity": "safe"} for name in ("hate", "self_harm", "sexual", "violence")
    }


class OpenAIUpstream(UpstreamApp):
    """The OpenAI (and Azure OpenAI) fake. ``api_key`` makes it check ``Authorization``/``api-key``."""

    protocol = "openai"

    def __init__(
        self, *, models: Sequence[str] = ("echo",), api_key: str | None = None, default_fault: Fault = NORMAL
    ) -> None:
        super().__init__(default_fault=default_fault)
        self.models = tuple(models)
        self.api_key = api_key
        self._ids = itertools.count(1)
        #: Exact reply texts for the next chat completions (:mod:`interlace.testing.replies`).
        self.replies = ReplyScript()
        azure = r"/openai/deployments/(?P<model>[^/]+)"
        self._routes: tuple[RouteSpec, ...] = (
            ("POST", re.compile(r"/v1/chat/completions"), self._chat, True),
            ("POST", re.compile(r"/v1/embeddings"), self._embeddings, True),
            ("GET", re.compile(r"/v1/models"), self._list_models, False),
            ("POST", re.compile(azure + "/chat/completions"), self._chat, True),
            ("POST", re.compile(azure + "/embeddings"), self._embeddings, True),
        )

    def route(self, method: str, path: str) -> Route | None:
        return match_route(self._routes, method, path)

    def response_headers(self) -> list[tuple[bytes, bytes]]:
        return [(b"x-request-id", b"req_%024x" % next(self._ids))]

    def error_body(self, status: int, code: str | None, message: str | None) -> dict[str, Any]:
        if code is not None and code in _KNOWN_ERRORS:
            kind, param, default = _KNOWN_ERRORS[code]
        else:
            fallback = _STATUS_ERRORS[500 if status >= _MIN_SERVER_ERROR else 400]
            kind, default_code, default = _STATUS_ERRORS.get(status, fallback)
            code, param = code or default_code, None
        error: dict[str, Any] = {"message": message or default, "type": kind, "param": param, "code": code}
        if code == "content_filter":
            error["innererror"] = {
                "code": "ResponsibleAIPolicyViolation",
                "content_filter_result": _filter_results(),
            }
        return {"error": error}

    def _admit(self, ex: Exchange) -> bool:
        """Check the Azure api-version and the credentials; ``True`` for an Azure path."""
        azure = ex.route is not None and ex.route.model is not None
        if azure and not ex.record.query.get("api-version"):
            message = "The api-version query parameter (?api-version=) is required for all requests."
            raise RejectionError(message, code="MissingApiVersionParameter")
        headers = ex.record.headers
        key = self.api_key
        if (
            key is not None
            and headers.get("authorization") != f"Bearer {key}"
            and headers.get("api-key") != key
        ):
            raise RejectionError("Incorrect API key provided.", status=401, code="invalid_api_key")
        return azure

    async def _chat(self, ex: Exchange) -> None:
        azure = self._admit(ex)
        body = ex.body
        _check_chat(body, azure=azure)
        messages: list[dict[str, Any]] = body["messages"]
        last = messages[-1]
        if last.get("role") not in {"user", "tool"}:
            last = next((m for m in reversed(messages) if m.get("role") == "user"), {})
        text = message_text(last.get("content"))
        calls = self._tool_calls(body, text) if messages[-1].get("role") == "user" else []
        stop = body.get("stop") or ()
        response_format = body.get("response_format") or {}
        echo = echo_text(
            text,
            stop=[stop] if isinstance(stop, str) else stop,
            max_tokens=body.get("max_completion_tokens", body.get("max_tokens")),
            json_mode=response_format.get("type") in {"json_object", "json_schema"},
        )
        if messages[-1].get("role") == "assistant":  # a prefill (vLLM continue_final_message style)
            echo = continue_echo(echo, message_text(messages[-1].get("content")))
        scripted = None if calls else self.replies.pop()
        if scripted is not None:  # a scripted reply, verbatim (structured-output tests)
            echo = EchoText(tuple(scripted.split(" ")), "stop", None)
        number = next(self._ids)
        encoded = [(name, orjson.dumps(arguments).decode()) for name, arguments in calls]
        tool_calls: list[dict[str, Any]] = [
            {
                "id": f"call_{number:016x}{k:08x}",
                "type": "function",
                "function": {"name": name, "arguments": args},
            }
            for k, (name, args) in enumerate(encoded)
        ]
        n = body.get("n") or 1
        prompt = sum(count_tokens(message_text(m.get("content"))) for m in messages)
        each = sum(count_tokens(f"{name} {args}") for name, args in encoded)
        completion = n * (each if tool_calls else len(echo.words))
        usage = {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": dict.fromkeys(_COMPLETION_DETAILS, 0),
        }
        reply = _Reply(
            head={
                "id": f"chatcmpl-{number:024x}",
                "created": int(time.time()),
                "model": _model_name(ex),
            },
            echo=echo,
            tool_calls=tool_calls,
            n=n,
            top=(body.get("top_logprobs") or 0) if body.get("logprobs") else None,
            azure=azure,
        )
        if not body.get("stream"):
            await ex.respond(reply.completion(usage))
            return
        options = body.get("stream_options") or {}
        events = reply.events(usage if options.get("include_usage") else None)
        await ex.respond_stream(events, b"data: [DONE]\n\n")

    def _tool_calls(self, body: dict[str, Any], text: str) -> list[tuple[str, dict[str, Any]]]:
        offered = [str(tool.get("function", {}).get("name")) for tool in body.get("tools") or ()]
        choice = body.get("tool_choice")
        if not offered or choice == "none":
            return []
        calls = tool_calls_in(text, offered)
        if not calls and isinstance(choice, dict) and isinstance(choice.get("function"), dict):
            forced = str(choice["function"].get("name"))
            calls = [(forced, {})] if forced in offered else []
        if not calls and choice == "required":
            calls = [(offered[0], {})]
        return calls

    async def _embeddings(self, ex: Exchange) -> None:
        body = ex.body
        items = _embedding_inputs(body, azure=self._admit(ex))
        dimensions = body.get("dimensions") or 8
        data = []
        for index, item in enumerate(items):
            vector = embedding_vector(item, dimensions)
            if body.get("encoding_format") == "base64":
                data.append({"object": "embedding", "index": index, "embedding": _base64(vector)})
            else:
                data.append({"object": "embedding", "index": index, "embedding": vector})
        tokens = sum(count_tokens(item) if isinstance(item, str) else len(item) for item in items)
        usage = {"prompt_tokens": tokens, "total_tokens": tokens}
        await ex.respond({"object": "list", "data": data, "model": _model_name(ex), "usage": usage})

    async def _list_models(self, ex: Exchange) -> None:
        self._admit(ex)
        data = [
            {"id": name, "object": "model", "created": 1_700_000_000, "owned_by": "interlace"}
            for name in self.models
        ]
        await ex.send_json({"object": "list", "data": data})


def _model_name(ex: Exchange) -> str:
    """The model a response names: the request's, else the Azure deployment."""
    return str(ex.body.get("model") or (ex.route.model if ex.route else None) or "")


def _base64(vector: list[float]) -> str:
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()


@dataclass(frozen=True, slots=True, kw_only=True)
class _Reply:
    head: dict[str, Any]
    echo: EchoText
    tool_calls: list[dict[str, Any]]
    n: int
    top: int | None  # top_logprobs; None when logprobs are off
    azure: bool

    @property
    def finish(self) -> str:
        return "tool_calls" if self.tool_calls else self.echo.finish

    def tokens(self) -> list[str]:
        return self.echo.pieces()

    def logprobs(self, tokens: list[str]) -> dict[str, Any] | None:
        if self.top is None:
            return None
        return {"content": [_logprob(token, self.top) for token in tokens], "refusal": None}

    def completion(self, usage: dict[str, Any]) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": None, "refusal": None, "annotations": []}
        if self.tool_calls:
            message["tool_calls"] = self.tool_calls
        else:
            message["content"] = "".join(self.echo.pieces())
        logprobs = None if self.tool_calls else self.logprobs(self.tokens())
        choices = [
            {"index": i, "message": message, "logprobs": logprobs, "finish_reason": self.finish}
            for i in range(self.n)
        ]
        response = {**self.head, "object": "chat.completion", "choices": choices, "usage": usage}
        response |= {"service_tier": "default", "system_fingerprint": _FINGERPRINT}
        if self.azure:
            for choice in choices:
                choice["content_filter_results"] = _filter_results()
            response["prompt_filter_results"] = [
                {"prompt_index": 0, "content_filter_results": _filter_results()}
            ]
        return response

    def events(self, usage: dict[str, Any] | None) -> list[bytes]:
        head = {**self.head, "object": "chat.completion.chunk", "service_tier": "default"}
        head |= {"system_fingerprint": _FINGERPRINT, **({"usage": None} if usage is not None else {})}
        frames = []
        if self.azure:  # Azure opens with the prompt's filter results and no choices
            results = [{"prompt_index": 0, "content_filter_results": _filter_results()}]
            opening = {"choices": [], "created": 0, "id": "", "model": "", "object": ""}
            frames.append(sse({**opening, "prompt_filter_results": results}))
        for index in range(self.n):
            for delta, logprobs, finish in self._deltas():
                choice = {"index": index, "delta": delta, "logprobs": logprobs, "finish_reason": finish}
                frames.append(sse({**head, "choices": [choice]}))
        if usage is not None:
            frames.append(sse({**head, "choices": [], "usage": usage}))
        return frames

    def _deltas(self) -> list[tuple[dict[str, Any], Any, str | None]]:
        role: dict[str, Any] = {
            "role": "assistant",
            "content": None if self.tool_calls else "",
            "refusal": None,
        }
        if not self.tool_calls:
            words = [({"content": token}, self.logprobs([token]), None) for token in self.tokens()]
            return [(role, None, None), *words, ({}, None, self.finish)]
        deltas: list[tuple[dict[str, Any], Any, str | None]] = []
        for k, call in enumerate(self.tool_calls):
            function = {"name": call["function"]["name"], "arguments": ""}
            opening = {"index": k, "id": call["id"], "type": "function", "function": function}
            deltas.append(({**(role if k == 0 else {}), "tool_calls": [opening]}, None, None))
            arguments: str = call["function"]["arguments"]
            for start in range(0, len(arguments), _ARG_PIECE):
                piece = {"index": k, "function": {"arguments": arguments[start : start + _ARG_PIECE]}}
                deltas.append(({"tool_calls": [piece]}, None, None))
        return [*deltas, ({}, None, self.finish)]


def _check_int(body: dict[str, Any], name: str) -> None:
    low, high = _INT_BOUNDS[name]
    value = body.get(name)
    if value is not None and not (isinstance(value, int) and low <= value <= high):
        raise RejectionError(f"Invalid '{name}': {value!r}; expected an integer from {low} to {high}.")


def _check_common(body: Any, *, azure: bool) -> None:
    if not isinstance(body, dict):
        raise RejectionError("The request body must be a JSON object.")
    if not azure and not isinstance(body.get("model"), str):
        raise RejectionError("you must provide a model parameter")


def _check_chat(body: Any, *, azure: bool) -> None:
    """Reject what the real API rejects in a chat completion request."""
    _check_common(body, azure=azure)
    _check_messages(body.get("messages"))
    for name in ("n", "max_tokens", "max_completion_tokens", "top_logprobs"):
        _check_int(body, name)
    if body.get("stream_options") is not None and not body.get("stream"):
        raise RejectionError("The 'stream_options' parameter is only allowed when 'stream' is enabled.")
    if body.get("top_logprobs") is not None and not body.get("logprobs"):
        raise RejectionError("'logprobs' must be set to true when 'top_logprobs' is used.")
    for name in ("response_format", "stream_options"):
        if body.get(name) is not None and not isinstance(body[name], dict):
            raise RejectionError(f"Invalid type for '{name}': expected an object.")
    tools = body.get("tools")
    if tools is not None and not (
        _all(tools, dict) and all(isinstance(t.get("function"), dict) for t in tools)
    ):
        raise RejectionError("Invalid 'tools': expected an array of objects with a 'function' object.")
    stop = body.get("stop")
    if stop is not None and not isinstance(stop, str) and not _all(stop, str):
        raise RejectionError(f"Invalid 'stop': {stop!r}; expected a string or an array of strings.")


def _check_messages(messages: Any) -> None:
    if messages is None:
        raise RejectionError("'messages' is a required property")
    if not isinstance(messages, list) or not messages:
        raise RejectionError(f"{messages!r} is too short - 'messages'")
    answered: set[str] = set()  # ids of the tool calls made so far
    for index, message in enumerate(messages):
        role = message.get("role") if isinstance(message, dict) else None
        if role not in _ROLES:
            raise RejectionError(f"Invalid value for 'messages[{index}].role': {role!r}.")
        answered.update(
            str(call.get("id")) for call in message.get("tool_calls") or () if isinstance(call, dict)
        )
        if role == "tool" and message.get("tool_call_id") not in answered:
            raise RejectionError(
                "Invalid parameter: messages with role 'tool' must be a response to a preceeding message "
                f"with 'tool_calls' (messages[{index}].tool_call_id={message.get('tool_call_id')!r})."
            )


def _all(value: Any, kind: type) -> bool:
    """Whether ``value`` is a non-empty list of ``kind``."""
    return isinstance(value, list) and bool(value) and all(isinstance(item, kind) for item in value)


def _embedding_inputs(body: Any, *, azure: bool) -> list[str | list[int]]:
    """The inputs of an embeddings request, rejecting what the real API rejects."""
    _check_common(body, azure=azure)
    raw = body.get("input")
    if raw is None:
        raise RejectionError("'input' is a required property")
    items = [raw] if isinstance(raw, str) or _all(raw, int) else raw
    if (
        not isinstance(items, list)
        or not items
        or not all((isinstance(i, str) and i) or _all(i, int) for i in items)
    ):
        raise RejectionError(
            "'$.input' is invalid. Please check the API reference: https://platform.openai.com/docs/api-reference."
        )
    _check_int(body, "dimensions")
    if body.get("encoding_format", "float") not in {"float", "base64"}:
        raise RejectionError(
            f"Invalid 'encoding_format': {body.get('encoding_format')!r}; use 'float' or 'base64'."
        )
    return items
