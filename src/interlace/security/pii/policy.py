"""The PII admission policy: mask (reversibly) or block personal data and secrets before routing.

It runs after scopes and residency and before rate limits (:mod:`interlace.security.gate`), on:

- chat (``/v1/chat/completions`` and ``/v1/messages``): every message's string content and text parts
  (system, user, assistant, tool results), the arguments of earlier tool calls (each JSON string
  value) and the body's ``user``; the answer's content and tool-call arguments are restored, streamed
  or not (:mod:`interlace.security.pii.restore`);
- embeddings and classify: each text input (and the embeddings ``user``). Nothing comes back to
  restore: the vector or the labels are those of the masked text, which is what a caller who masks
  wants (the value never left).
  Token-id inputs (``[[1, 2, 3]]``) cannot be read and pass unchanged.

The rule for a request comes from its tenant and endpoint family (:mod:`interlace.config.pii`), is
computed once per (tenant, family) and cached. A request with nothing found costs the scan only: no
copy of the body, no hold. Decisions name entity types and counts, never values
(``pii:mask EMAIL_ADDRESS=2 PHONE_NUMBER=1``).

Presidio (and spaCy through it) is imported only when a policy is configured, by :meth:`start`, in a
worker thread (a few seconds), so the gateway without PII never pays for it. Scanning a few KB costs a
few milliseconds on the event loop; longer requests are scanned in a worker thread.
"""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import functools
import json
from typing import TYPE_CHECKING, Any, Final

from interlace.config.pii import expand_entities
from interlace.core.errors import ContentPolicyViolation
from interlace.core.operations import ChatRequest, ClassifyRequest, EmbeddingRequest
from interlace.security.gate import Hold
from interlace.security.pii.masker import Masker
from interlace.security.pii.restore import restore_answer, restore_stream

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from interlace.config.pii import PiiConfig, PiiRule
    from interlace.config.schema import Config
    from interlace.config.tenants import TenantConfig
    from interlace.core.operations import ChatChunks
    from interlace.security.gate import Call
    from interlace.security.pii.detector import Detector

__all__ = ["OFFLOAD_CHARS", "PiiHold", "PiiPolicy", "Rule"]

OFFLOAD_CHARS: Final = 16_384
"""Requests with more text than this are scanned in a worker thread, not on the event loop."""


@dataclasses.dataclass(frozen=True, slots=True)
class Rule:
    """What is done, to which entity types, for one (tenant, endpoint family)."""

    action: str
    entities: frozenset[str]


class PiiHold(Hold):
    """Restores a masked request's placeholders in its answer."""

    def __init__(self, masker: Masker) -> None:
        self.masker = masker

    def restore(self, answer: dict[str, Any]) -> dict[str, Any]:
        return restore_answer(self.masker, answer)

    def restore_stream(self, chunks: ChatChunks) -> ChatChunks:
        return restore_stream(self.masker, chunks)


class PiiPolicy:
    name = "pii"

    def __init__(
        self,
        pii: PiiConfig,
        tenants: dict[str, TenantConfig] | None = None,
        *,
        detector: Callable[[frozenset[str]], Detector] | None = None,
    ) -> None:
        self._global = pii
        self._tenants = {
            tenant: config.pii for tenant, config in (tenants or {}).items() if config.pii is not None
        }
        self._rules: dict[tuple[str | None, str], Rule] = {}
        self._build = detector or functools.partial(_build_detector, pii)
        self._detector: Detector | None = None
        self._loading: asyncio.Future[Detector] | None = None

    @classmethod
    def from_config(cls, config: Config) -> PiiPolicy | None:
        """The policy, or None when no action anywhere is other than ``allow`` (nothing is imported)."""
        policy = cls(config.pii, config.tenants)
        return policy if policy.entities_acted_on() else None

    def entities_acted_on(self) -> frozenset[str]:
        """Every entity type some tenant or endpoint masks or blocks: what the detector must find."""
        found: set[str] = set()
        for tenant in (None, *self._tenants):
            for endpoint in ("chat", "embeddings", "classify"):
                rule = self.rule(tenant, endpoint)
                if rule.action != "allow":
                    found |= rule.entities
        return frozenset(found)

    def rule(self, tenant: str | None, endpoint: str) -> Rule:
        """The rule for ``tenant``'s requests to ``endpoint``: the most specific setting wins."""
        key = (
            tenant if tenant in self._tenants else None,
            endpoint,
        )  # unlisted tenants share the global rule
        rule = self._rules.get(key)
        if rule is None:
            rule = self._rules[key] = self._resolve(tenant, endpoint)
        return rule

    def _resolve(self, tenant: str | None, endpoint: str) -> Rule:
        action: str = self._global.action
        entities = list(self._global.entities)
        layers: list[PiiRule | None] = [self._global.endpoints.get(endpoint)]  # type: ignore[call-overload]
        own = self._tenants.get(tenant) if tenant is not None else None
        if own is not None:
            layers += [own, own.endpoints.get(endpoint)]  # type: ignore[call-overload]
        for layer in layers:
            if layer is None:
                continue
            action = layer.action or action
            entities = list(layer.entities) if layer.entities is not None else entities
        if endpoint not in {"chat", "embeddings", "classify"}:
            action = "allow"
        return Rule(action, expand_entities(entities))

    async def start(self) -> None:
        """Build the detector (imports presidio) in a worker thread; :meth:`admit` waits for it."""
        await self._ready()

    async def _ready(self) -> Detector:
        if self._detector is not None:
            return self._detector
        if self._loading is None:
            self._loading = asyncio.ensure_future(asyncio.to_thread(self._build, self.entities_acted_on()))
        self._detector = await asyncio.shield(self._loading)
        return self._detector

    async def admit(self, call: Call[Any]) -> PiiHold | None:
        rule = self.rule(call.principal.tenant, call.endpoint)
        op = call.op
        if rule.action == "allow" or not isinstance(op, ChatRequest | EmbeddingRequest | ClassifyRequest):
            return None
        detector = self._detector or await self._ready()
        texts = list(_texts(op))
        masker = Masker(texts)
        if sum(map(len, texts)) > OFFLOAD_CHARS:  # a long scan in a worker: other requests keep moving
            masked = await asyncio.to_thread(_mask_op, op, detector, rule.entities, masker)
        else:
            masked = _mask_op(op, detector, rule.entities, masker)
        if not masker:
            return None
        counts = " ".join(f"{entity}={n}" for entity, n in sorted(masker.entity_counts().items()))
        call.ctx.decisions.append(f"pii:{rule.action} {counts}")
        if rule.action == "block":
            found = ", ".join(sorted(masker.entity_counts()))
            raise ContentPolicyViolation(
                f"The request contains personal data or secrets this gateway does not accept: {found}. "
                "Remove them and try again.",
                code="pii_detected",
                param="messages" if isinstance(op, ChatRequest) else "input",
            )
        call.op = masked
        return PiiHold(masker) if isinstance(op, ChatRequest) else None


def _build_detector(pii: PiiConfig, entities: frozenset[str]) -> Detector:
    from interlace.security.pii.detector import Detector  # noqa: PLC0415 - presidio only when configured

    return Detector(entities, min_score=pii.min_score, phone_regions=pii.phone_regions)


def _texts(op: ChatRequest | EmbeddingRequest | ClassifyRequest) -> Iterator[str]:
    """Every text of the request that is inspected (for the placeholders it already holds)."""
    if isinstance(op, ChatRequest):
        for message in op.body.get("messages") or ():
            if isinstance(message, dict):
                yield from _message_texts(message)
        user = op.body.get("user")
    else:
        yield from (item for item in op.inputs if isinstance(item, str))
        user = op.user if isinstance(op, EmbeddingRequest) else None
    if isinstance(user, str):
        yield user


def _message_texts(message: dict[str, Any]) -> Iterator[str]:
    content = message.get("content")
    if isinstance(content, str):
        yield content
    elif isinstance(content, list):
        yield from (p["text"] for p in content if isinstance(p, dict) and isinstance(p.get("text"), str))
    for call in message.get("tool_calls") or ():
        function = call.get("function") if isinstance(call, dict) else None
        if isinstance(function, dict) and isinstance(function.get("arguments"), str):
            yield function["arguments"]


def _mask_op(
    op: ChatRequest | EmbeddingRequest | ClassifyRequest,
    detector: Detector,
    entities: frozenset[str],
    masker: Masker,
) -> ChatRequest | EmbeddingRequest | ClassifyRequest:
    """``op`` with its texts masked: a new request (the original is untouched) when something was found."""

    def mask(text: str) -> str:
        return masker.mask(text, detector.find(text, entities))

    if isinstance(op, ChatRequest):
        messages = op.body.get("messages")
        if not isinstance(messages, list):
            return op
        masked = [_mask_message(m, mask) if isinstance(m, dict) else m for m in messages]
        body = {**op.body, "messages": masked}
        if isinstance(op.body.get("user"), str):  # an end-user id is often an e-mail address
            body["user"] = mask(op.body["user"])
        return dataclasses.replace(op, body=body) if masker else op
    if isinstance(op, ClassifyRequest):
        texts = [mask(item) for item in op.inputs]
        return dataclasses.replace(op, inputs=texts) if masker else op
    tokens = bool(op.inputs) and isinstance(op.inputs[0], list)  # token ids: nothing to read
    inputs = op.inputs if tokens else [mask(item) for item in op.inputs if isinstance(item, str)]
    user = mask(op.user) if op.user is not None else None
    return dataclasses.replace(op, inputs=inputs, user=user) if masker else op


def _mask_message(message: dict[str, Any], mask: Callable[[str], str]) -> dict[str, Any]:
    out = message
    content = message.get("content")
    if isinstance(content, str):
        masked = mask(content)
        if masked != content:
            out = {**message, "content": masked}
    elif isinstance(content, list):
        parts = [
            {**p, "text": mask(p["text"])} if isinstance(p, dict) and isinstance(p.get("text"), str) else p
            for p in content
        ]
        if parts != content:
            out = {**message, "content": parts}
    calls = message.get("tool_calls")
    if isinstance(calls, list) and calls:
        masked_calls = [_mask_tool_call(c, mask) for c in calls]
        if masked_calls != calls:
            out = {**out, "tool_calls": masked_calls}
    return out


def _mask_tool_call(call: Any, mask: Callable[[str], str]) -> Any:
    function = call.get("function") if isinstance(call, dict) else None
    arguments = function.get("arguments") if isinstance(function, dict) else None
    if not isinstance(arguments, str):
        return call
    try:
        value = json.loads(arguments)
    except ValueError:
        masked = mask(arguments)  # not JSON: masked as text
    else:
        masked_value = _mask_json(copy.deepcopy(value), mask)
        masked = arguments if masked_value == value else json.dumps(masked_value, ensure_ascii=False)
    if masked == arguments:
        return call
    return {**call, "function": {**function, "arguments": masked}}  # type: ignore[dict-item]


def _mask_json(value: Any, mask: Callable[[str], str]) -> Any:
    """Every string in a JSON value masked (keys are names, not data: left alone)."""
    if isinstance(value, str):
        return mask(value)
    if isinstance(value, list):
        return [_mask_json(item, mask) for item in value]
    if isinstance(value, dict):
        return {key: _mask_json(item, mask) for key, item in value.items()}
    return value
