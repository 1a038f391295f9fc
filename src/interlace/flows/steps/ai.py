"""The AI steps: ``function``, ``chat``, ``embed`` and ``classify`` — each message one model request
(``embed`` and ``classify`` also answer whole batches for the ``batch`` step), run as the flow's
principal through the gate and the router (:mod:`interlace.flows.steps._calls`).

``input`` (JSONata over the payload) builds the function's input; the answer replaces the payload or
goes ``into`` a field of it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from interlace.core.errors import MessageRejected
from interlace.core.operations import ChatRequest, ClassifyRequest, EmbeddingRequest
from interlace.flows.steps._calls import call_context, field_text, place
from interlace.security.gate import Call

if TYPE_CHECKING:
    from collections.abc import Sequence

    from interlace.flows.message import Message
    from interlace.flows.services import FlowServices
    from interlace.flows.steps.config import (
        ChatStepConfig,
        ClassifyStepConfig,
        EmbedStepConfig,
        FunctionStepConfig,
    )
    from interlace.functions.template import PromptTemplate
    from interlace.routing.router import Router
    from interlace.security.gate import Admission, Gate

__all__ = ["ChatStep", "ClassifyStep", "EmbedStep", "FunctionStep"]


def _input_of(expression: Any, payload: Any) -> Any:
    if expression is None:
        return payload
    return expression.evaluate(payload)


def _compile(source: str | None) -> Any:
    if source is None:
        return None
    import jsonata  # type: ignore[import-untyped]  # noqa: PLC0415

    return jsonata.Jsonata(source)


class FunctionStep:
    """Calls an AI function with the payload (or ``input``); its validated output is the answer."""

    def __init__(self, config: FunctionStepConfig, services: FlowServices) -> None:
        self.config = config
        self.name = config.name or f"function-{config.function}"
        self.services = services
        self.runner = services.need(services.functions, "AI functions", "run it with a runtime")
        self.runner.registry.get(config.function, config.version)  # unknown function: fail at build
        self._input = _compile(config.input)

    async def process(self, message: Message) -> Sequence[Message]:
        data = _input_of(self._input, message.payload)
        endpoint = f"flow:{self.services.flow}/function/{self.config.function}"
        with call_context(
            self.services, message, "function", endpoint, data if isinstance(data, dict) else None
        ) as (
            ctx,
            rec,
        ):

            def admitted(admission: Admission[Any]) -> None:
                if rec is not None:
                    rec.admission = admission

            result = await self.runner.run(
                self.services.principal,
                self.config.function,
                self.config.version,
                data,
                ctx=ctx,
                on_admit=admitted,
            )
            if rec is not None:
                rec.usage = result.usage
                rec.confidence = result.confidence
        answer = {**result.output}
        if result.needs_review:
            answer["needs_review"] = True
        if result.confidence is not None:
            answer.setdefault("confidence", result.confidence)
        return [message.derive(place(message.payload, self.config.into, answer))]


class _Routed:
    """A step that calls the router directly, admitted by the gate once per request."""

    def __init__(self, services: FlowServices) -> None:
        self.services = services
        self.router: Router = services.need(services.router, "the model router", "run it with a runtime")
        self.gate: Gate = services.need(services.gate, "the admission gate", "run it with a runtime")


class ChatStep(_Routed):
    def __init__(self, config: ChatStepConfig, services: FlowServices) -> None:
        super().__init__(services)
        from interlace.functions.template import PromptTemplate  # noqa: PLC0415

        self.config = config
        self.name = config.name or "chat"
        self.prompt: PromptTemplate = PromptTemplate(config.prompt, limit=200_000)
        self.system: PromptTemplate | None = (
            PromptTemplate(config.system, limit=200_000) if config.system is not None else None
        )
        self._input = _compile(config.input)

    async def process(self, message: Message) -> Sequence[Message]:
        data = _input_of(self._input, message.payload)
        if not isinstance(data, dict):
            raise MessageRejected("a chat step's prompt renders over an object payload", param="payload")
        messages = []
        if self.system is not None:
            messages.append({"role": "system", "content": self.system.render(data)})
        messages.append({"role": "user", "content": self.prompt.render(data)})
        body: dict[str, Any] = {"model": self.config.model, "messages": messages}
        if self.config.max_tokens is not None:
            body["max_tokens"] = self.config.max_tokens
        if self.config.temperature is not None:
            body["temperature"] = self.config.temperature
        with call_context(self.services, message, "chat", f"flow:{self.services.flow}/chat", body) as (
            ctx,
            rec,
        ):
            admission = await self.gate.admit(
                Call(self.services.principal, "chat", ChatRequest(model=self.config.model, body=body), ctx)
            )
            if rec is not None:
                rec.admission = admission
            answer = admission.restore(await self.router.chat(admission.op, ctx))
            if rec is not None:
                rec.answered(answer)
        choices = answer.get("choices") or [{}]
        text = str((choices[0].get("message") or {}).get("content") or "")
        return [message.derive(place(message.payload, self.config.into, text))]


class EmbedStep(_Routed):
    def __init__(self, config: EmbedStepConfig, services: FlowServices) -> None:
        super().__init__(services)
        self.config = config
        self.name = config.name or "embed"

    async def process(self, message: Message) -> Sequence[Message]:
        return (await self.process_batch([message]))[0]

    async def process_batch(self, messages: Sequence[Message]) -> list[list[Message]]:
        texts = [field_text(m.payload, self.config.field) for m in messages]
        op = EmbeddingRequest(model=self.config.model, inputs=texts)
        with call_context(self.services, messages[0], "embeddings", f"flow:{self.services.flow}/embed") as (
            ctx,
            rec,
        ):
            admission = await self.gate.admit(Call(self.services.principal, "embeddings", op, ctx))
            if rec is not None:
                rec.admission = admission
            result = await self.router.embed(admission.op, ctx)
            if rec is not None:
                rec.counted(result.prompt_tokens)
        return [
            [m.derive(place(m.payload, self.config.into, vector))]
            for m, vector in zip(messages, result.vectors, strict=True)
        ]


class ClassifyStep(_Routed):
    def __init__(self, config: ClassifyStepConfig, services: FlowServices) -> None:
        super().__init__(services)
        self.config = config
        self.name = config.name or "classify"

    async def process(self, message: Message) -> Sequence[Message]:
        return (await self.process_batch([message]))[0]

    async def process_batch(self, messages: Sequence[Message]) -> list[list[Message]]:
        config = self.config
        texts = [field_text(m.payload, config.field) for m in messages]
        op = ClassifyRequest(
            model=config.model, inputs=texts, labels=list(config.labels), multi_label=config.multi_label
        )
        with call_context(self.services, messages[0], "classify", f"flow:{self.services.flow}/classify") as (
            ctx,
            rec,
        ):
            admission = await self.gate.admit(Call(self.services.principal, "classify", op, ctx))
            if rec is not None:
                rec.admission = admission
            result = await self.router.classify(admission.op, ctx)
            if rec is not None:
                rec.classified(result)
        outputs = []
        for m, scores in zip(messages, result.scores, strict=True):
            answer = {
                "label": scores[0].label if scores else None,
                "scores": {s.label: s.score for s in scores},
            }
            outputs.append([m.derive(place(m.payload, config.into, answer))])
        return outputs
