"""Run one function call: validate the input, admit it, route it, validate the output, score it.

``FunctionRunner.run(principal, name, version, data)`` is the single entry point — the gateway route,
the CLI's golden-case runner and a job executor all call it and get the same :class:`FunctionResult`.
Each call passes the gateway's admission gate once (endpoint family ``functions``: scopes, quotas,
PII masking …) with the function's first model request, and every model request — re-asks and a
confidence fallback included — goes through the router (rules, strategies, retries, breakers,
fallbacks) like any other call. The caller may receive the :class:`~interlace.security.gate.Admission`
through ``on_admit`` to settle it once the call is recorded (the gateway's recording does).

Per kind:

- ``llm``: the chat contract of :mod:`~interlace.functions.structured` with its bounded re-ask loop;
  confidence from the declared output field or from logprobs;
- ``classify``: a ``ClassifyRequest`` (the local zero-shot classifier, or any model serving
  classification) — or, on an Open Inference Protocol v2 model, an inference with the text as a
  ``BYTES`` tensor named ``text`` whose first output holds one score per label, in label order;
  the top score is the confidence;
- ``embed``: an ``EmbeddingRequest`` for the field (or both compared fields).

Below ``confidence.threshold`` the answer is flagged ``needs_review``, or — with ``fallback_model`` —
run once more on that model and that answer kept (flagged if it is still below).
"""

from __future__ import annotations

import copy
import math
import random
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from interlace.core.errors import FunctionOutputInvalid, RequestError, UpstreamProtocolError
from interlace.core.operations import ChatRequest, ClassifyRequest, EmbeddingRequest, InferRequest
from interlace.functions.definition import violations
from interlace.functions.registry import FunctionRegistry
from interlace.functions.structured import (
    chat_body,
    choose_mode,
    logprob_confidence,
    parse_answer,
    repair_messages,
)
from interlace.observability.cost import cost_usd
from interlace.observability.record import Usage
from interlace.routing.context import RouteContext
from interlace.security.gate import Call

if TYPE_CHECKING:
    from collections.abc import Callable

    from interlace.config.functions import FunctionsConfig
    from interlace.core.operations import ModelRequest
    from interlace.core.principal import Principal
    from interlace.functions.definition import FunctionDefinition
    from interlace.functions.shadow import FunctionShadowMirror
    from interlace.routing.router import Router
    from interlace.routing.shadow import ShadowSink
    from interlace.security.gate import Admission, Gate

__all__ = ["ENDPOINT", "FunctionResult", "FunctionRunner"]

ENDPOINT = "functions"
"""The endpoint family a key must be allowed to call (:data:`~interlace.core.principal.ENDPOINTS`)."""


@dataclass(slots=True, kw_only=True)
class FunctionResult:
    """A validated answer of one function call (what ``POST /v1/functions/{name}`` returns)."""

    function: str
    version: str
    output: dict[str, Any]
    """Exactly the validated object: nothing is added to it."""
    confidence: float | None = None
    needs_review: bool = False
    model: str | None = None
    """The model alias that served the kept answer."""
    deployment: str | None = None
    usage: Usage = field(default_factory=Usage)
    """Every model request of the call added up (re-asks and a fallback included)."""
    cost_usd: float = 0.0
    repairs: int = 0
    """Re-asks it took to get a valid answer."""
    fallback: bool = False
    """The answer came from ``confidence.fallback_model``."""
    latency_s: float = 0.0

    def to_json(self) -> dict[str, Any]:
        usage = self.usage
        return {
            "object": "function.result",
            "function": self.function,
            "version": self.version,
            "output": self.output,
            "confidence": self.confidence,
            "needs_review": self.needs_review,
            "model": self.model,
            "repairs": self.repairs,
            "fallback": self.fallback,
            "usage": {
                "prompt_tokens": usage.prompt_tokens,
                "completion_tokens": usage.completion_tokens,
                "total_tokens": usage.total_tokens,
            },
        }


@dataclass(slots=True)
class _Tally:
    """Usage and cost of every model request of one call."""

    prompt: int = 0
    completion: int = 0
    cost: float = 0.0

    def usage(self) -> Usage:
        return Usage(prompt_tokens=self.prompt, completion_tokens=self.completion)


class FunctionRunner:
    """Runs the functions of one configuration through one router and gate."""

    __slots__ = ("embedding_model", "gate", "registry", "router", "shadow")

    def __init__(
        self, registry: FunctionRegistry, router: Router, gate: Gate, *, embedding_model: str = "minilm"
    ) -> None:
        self.registry = registry
        self.router = router
        self.gate = gate
        self.embedding_model = embedding_model
        self.shadow: FunctionShadowMirror | None = None
        """Shadow runs of versions with ``shadow:`` (:mod:`interlace.functions.shadow`), when set."""

    @classmethod
    def from_config(
        cls,
        config: FunctionsConfig,
        router: Router,
        gate: Gate,
        *,
        shadow_sink: ShadowSink | None = None,
        rng: random.Random | None = None,
    ) -> FunctionRunner:
        """The runner of a configuration; with ``shadow_sink``, versions with ``shadow:`` are mirrored."""
        runner = cls(
            FunctionRegistry(config.definitions), router, gate, embedding_model=config.embedding_model
        )
        if shadow_sink is not None and any(d.shadow is not None for d in config.definitions):
            from interlace.functions.shadow import FunctionShadowMirror  # noqa: PLC0415 - a cycle

            runner.shadow = FunctionShadowMirror(
                runner,
                shadow_sink,
                track=gate.track,
                rng=rng or random.Random(),  # noqa: S311
            )
        return runner

    async def run(
        self,
        principal: Principal,
        name: str,
        version: str | None,
        data: Any,
        *,
        ctx: RouteContext | None = None,
        model: str | None = None,
        on_admit: Callable[[Admission[Any]], None] | None = None,
        on_usage: Callable[[Usage], None] | None = None,
        gated: bool = True,
        mirror: bool = True,
    ) -> FunctionResult:
        """Call ``name`` (``version``, else the latest) on ``data``; ``model`` overrides its model alias.

        ``on_usage`` sees the usage so far after every model request (a call that fails after
        re-asks has still spent tokens: the gateway records and settles them). ``gated=False`` skips the
        admission gate (shadow runs only: nothing is charged to the caller); ``mirror=False`` starts no
        shadow run of this call.
        """
        definition = self.registry.get(name, version)
        check_input(definition, data)
        ctx = ctx if ctx is not None else RouteContext(principal=principal)
        call = _CallState(self, definition, ctx, on_admit if gated else None, gated=gated)
        call.on_usage = on_usage
        began = time.perf_counter()
        result = await call.run(model or definition.config.model, data)
        result.latency_s = time.perf_counter() - began
        if mirror and self.shadow is not None:
            self.shadow.after(definition, data, result, principal)
        return result


def check_input(definition: FunctionDefinition, data: Any) -> None:
    """400 naming the first wrong field (a JSON pointer) unless ``data`` matches the input schema."""
    problems = violations(definition.input_validator, data)
    if problems:
        first = problems[0]
        raise RequestError(
            f"The input does not match the function's input schema at {first['path']}: {first['message']}",
            param=first["path"],
            code="invalid_function_input",
        )


class _CallState:
    """One function call in progress: its admission, tally and routing context."""

    def __init__(
        self,
        runner: FunctionRunner,
        definition: FunctionDefinition,
        ctx: RouteContext,
        on_admit: Callable[[Admission[Any]], None] | None,
        *,
        gated: bool = True,
    ) -> None:
        self.runner = runner
        self.gated = gated
        self.definition = definition
        self.ctx = ctx
        self.on_admit = on_admit
        self.admission: Admission[Any] | None = None
        self.tally = _Tally()
        self.on_usage: Callable[[Usage], None] | None = None

    async def admit(self, op: ModelRequest) -> ModelRequest:
        """The gate, once per call (its first model request); later requests reuse the admission."""
        if self.admission is None and self.gated:
            self.admission = await self.runner.gate.admit(Call(self.ctx.principal, ENDPOINT, op, self.ctx))
            if self.on_admit is not None:
                self.on_admit(self.admission)
            admitted: ModelRequest = self.admission.op
            return admitted
        return op

    def count(self, prompt: int, completion: int = 0) -> None:
        self.tally.prompt += prompt
        self.tally.completion += completion
        if self.on_usage is not None:
            self.on_usage(self.tally.usage())
        route = self.runner.router.routes.get(self.ctx.served_model or "")
        if route is None:
            return
        for deployment in route.deployments:
            if deployment.name == self.ctx.deployment:
                usage = Usage(prompt_tokens=prompt, completion_tokens=completion)
                self.tally.cost += cost_usd(usage, deployment.price)

    async def run(self, model: str, data: dict[str, Any]) -> FunctionResult:
        setting = self.definition.config.confidence
        output, confidence, repairs = await self.attempt(model, data)
        below = _below(confidence, setting.threshold)
        fallback = setting.fallback_model
        if below and fallback is not None and fallback != model:
            output, confidence, more = await self.attempt(fallback, data)
            result = self.result(output, confidence, repairs + more)
            result.fallback = True
            result.needs_review = _below(confidence, setting.threshold)
            return result
        result = self.result(output, confidence, repairs)
        result.needs_review = below
        return result

    async def attempt(self, model: str, data: dict[str, Any]) -> tuple[dict[str, Any], float | None, int]:
        """The validated output on ``model``, its confidence and the re-asks it took."""
        kind = self.definition.config.kind
        if kind == "llm":
            return await self.llm(model, data)
        if kind == "classify":
            output = await self.classify(model, data)
            return output, max(output["scores"].values(), default=None), 0
        return await self.embed(model, data), None, 0

    def result(self, output: dict[str, Any], confidence: float | None, repairs: int) -> FunctionResult:
        ctx = self.ctx
        return FunctionResult(
            function=self.definition.name,
            version=self.definition.version,
            output=output,
            confidence=confidence,
            model=ctx.served_model,
            deployment=ctx.deployment,
            usage=self.tally.usage(),
            cost_usd=self.tally.cost,
            repairs=repairs,
        )

    async def llm(self, model: str, data: dict[str, Any]) -> tuple[dict[str, Any], float | None, int]:
        definition = self.definition
        config = definition.config
        route = self.runner.router.routes.get(model)
        providers = [d.provider.kind for d in route.deployments] if route is not None else []
        body = chat_body(definition, data, model=model, mode=choose_mode(definition, providers))
        op = await self.admit(ChatRequest(model=model, body=body))
        assert isinstance(op, ChatRequest)
        body = op.body  # masked, when a PII policy masks
        attempts = config.max_repairs + 1
        for attempt in range(attempts):
            answer = await self.runner.router.chat(ChatRequest(model=model, body=body), self.ctx)
            usage = answer.get("usage") or {}
            self.count(int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0))
            masked = parse_answer(definition, answer)
            restored = answer
            if self.admission is not None:
                restored = self.admission.restore(copy.deepcopy(answer))
            parsed = parse_answer(definition, restored) if restored is not answer else masked
            if parsed.output is not None:
                return parsed.output, self.confidence(parsed.output, answer), attempt
            if attempt + 1 == attempts:
                raise FunctionOutputInvalid(
                    f"The model's answer to function '{config.name}' (version {config.version}) does not "
                    f"match its output schema after {attempts} attempt(s): "
                    f"{parsed.problems[0]['path']}: {parsed.problems[0]['message']}",
                    raw_output=parsed.raw,
                    violations=parsed.problems,
                    attempts=attempts,
                )
            body = repair_messages(body, masked)
        raise AssertionError("unreachable")  # pragma: no cover

    def confidence(self, output: dict[str, Any], answer: dict[str, Any]) -> float | None:
        setting = self.definition.config.confidence
        if setting.field is not None:
            value = output.get(setting.field)
            if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
                return float(value)
            return None
        return logprob_confidence(answer) if setting.logprobs else None

    def text_of(self, data: dict[str, Any], name: str) -> str:
        value = data.get(name)
        if not isinstance(value, str) or not value.strip():
            raise RequestError(
                f"The input field '{name}' must be a non-empty string.",
                param=f"/{name}",
                code="invalid_function_input",
            )
        return value

    async def classify(self, model: str, data: dict[str, Any]) -> dict[str, Any]:
        definition = self.definition
        config = definition.config
        if config.field is not None:
            text = self.text_of(data, config.field)
        else:
            assert definition.prompt is not None
            text = definition.prompt.render(data)
        router = self.runner.router
        route = router.routes.get(model)
        if route is not None and "classify" not in route.operations and "infer" in route.operations:
            scores = await self.infer_scores(model, text)
        else:
            op = await self.admit(
                ClassifyRequest(
                    model=model, inputs=[text], labels=list(config.labels), multi_label=config.multi_label
                )
            )
            assert isinstance(op, ClassifyRequest)
            result = await router.classify(op, self.ctx)
            self.count(result.prompt_tokens)
            scores = {s.label: s.score for s in result.scores[0]}
        ordered = sorted(scores.items(), key=lambda item: -item[1])
        output: dict[str, Any] = {"label": ordered[0][0], "scores": scores}
        if config.multi_label:
            output["labels"] = [label for label, score in ordered if score >= 0.5]  # noqa: PLR2004
        return output

    async def infer_scores(self, model: str, text: str) -> dict[str, float]:
        labels = self.definition.config.labels
        body = {"inputs": [{"name": "text", "shape": [1], "datatype": "BYTES", "data": [text]}]}
        op = await self.admit(InferRequest(model=model, body=body))
        assert isinstance(op, InferRequest)
        answer = await self.runner.router.infer(op, self.ctx)
        outputs = answer.get("outputs") or [{}]
        values = outputs[0].get("data") or []
        if len(values) != len(labels) or not all(isinstance(v, int | float) for v in values):
            raise UpstreamProtocolError(
                f"The model '{model}' answered {len(values)} values for {len(labels)} labels; a classify "
                "function on an inference model needs one score per label, in label order."
            )
        self.count(0)
        return {label: float(value) for label, value in zip(labels, values, strict=True)}

    async def embed(self, model: str, data: dict[str, Any]) -> dict[str, Any]:
        config = self.definition.config
        names = config.compare or [config.field or ""]
        texts = [self.text_of(data, name) for name in names]
        op = await self.admit(EmbeddingRequest(model=model, inputs=texts))
        assert isinstance(op, EmbeddingRequest)
        result = await self.runner.router.embed(op, self.ctx)
        self.count(result.prompt_tokens)
        if config.compare is None:
            return {"embedding": result.vectors[0]}
        similarity = cosine(result.vectors[0], result.vectors[1])
        return {"similarity": similarity, "duplicate": similarity >= config.duplicate_threshold}


def _below(confidence: float | None, threshold: float | None) -> bool:
    """Whether an answer needs review: a threshold is set and the confidence is unknown or under it."""
    return threshold is not None and (confidence is None or confidence < threshold)


def cosine(a: list[float], b: list[float]) -> float:
    """Cosine similarity of two vectors (0 when either is zero)."""
    dot = sum(x * y for x, y in zip(a, b, strict=False))
    norm = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    return dot / norm if norm else 0.0
