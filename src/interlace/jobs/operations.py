"""What a job can carry: a gateway operation, decoded when submitted and run by a worker.

Each :class:`Executor` knows one operation: the request body it accepts (the same body as the sync
endpoint, validated the same way, so a bad job is a 400 when submitted, not a failure later), the
endpoint family the gate checks, and how to run it through the router into the same answer the sync
endpoint gives. :class:`Executors` is the registry, keyed by operation name; AI functions register
theirs later. Streaming is refused: a job's answer is stored whole.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeAlias

from interlace.core.errors import RequestError
from interlace.core.usage import usage_dict
from interlace.gateway.routes.chat import decode_chat_request
from interlace.gateway.routes.classify import classify_answer, decode_classify_request
from interlace.gateway.routes.embeddings import decode_embedding_request, embeddings_answer

if TYPE_CHECKING:
    from collections.abc import Iterator

    from interlace.core.operations import ModelRequest
    from interlace.core.principal import Principal
    from interlace.gateway.recording import Recording
    from interlace.routing.context import RouteContext
    from interlace.routing.router import Router
    from interlace.security.gate import Admission

__all__ = [
    "AnyExecutor",
    "ChatExecutor",
    "ClassifyExecutor",
    "Decoded",
    "EmbeddingExecutor",
    "Executor",
    "Executors",
    "SelfGatedExecutor",
]


class Decoded(Protocol):
    """What a decoded job request tells the queue: the model it names (jobs are listed by it)."""

    @property
    def model(self) -> str: ...


class Executor(Protocol):
    name: str
    """The operation's name in ``POST /v1/jobs`` (``chat``), and the operation it is recorded as."""
    endpoint: str
    """The endpoint family the gate admits it as (:data:`~interlace.core.principal.ENDPOINTS`)."""
    path: str
    """The sync endpoint it mirrors (``/v1/chat/completions``): batch lines name it as their ``url``."""
    gated: Literal[True]
    """The worker admits :meth:`decode`'s operation through the gate before :meth:`run`."""

    def decode(self, body: dict[str, Any]) -> ModelRequest:
        """The canonical operation of ``body``; raises a 400 naming the field that is wrong."""
        ...

    def request_for(self, url: str, body: dict[str, Any]) -> dict[str, Any] | None:
        """The job request of a batch line to ``url`` with ``body``; None if ``url`` is not this one."""
        ...

    async def run(
        self,
        router: Router,
        admission: Admission[Any],
        ctx: RouteContext,
        rec: Recording,
        body: dict[str, Any],
    ) -> dict[str, Any]:
        """Route the admitted operation of ``body``; the answer the sync endpoint would give."""
        ...


@dataclass(slots=True)
class ChatExecutor:
    name: str = "chat"
    endpoint: str = "chat"
    path: str = "/v1/chat/completions"
    gated: Literal[True] = True

    def request_for(self, url: str, body: dict[str, Any]) -> dict[str, Any] | None:
        return _same_path(self.path, url, body)

    def decode(self, body: dict[str, Any]) -> ModelRequest:
        op = decode_chat_request(body)
        if op.stream:
            raise RequestError("A job's answer is stored whole: 'stream' must be false.", param="stream")
        return op

    async def run(
        self,
        router: Router,
        admission: Admission[Any],
        ctx: RouteContext,
        rec: Recording,
        body: dict[str, Any],
    ) -> dict[str, Any]:
        del body
        answer = admission.restore(await router.chat(admission.op, ctx))
        if not answer.get("usage"):
            answer["usage"] = usage_dict(0, 0)
        rec.answered(answer)
        return answer


@dataclass(slots=True)
class EmbeddingExecutor:
    name: str = "embeddings"
    endpoint: str = "embeddings"
    path: str = "/v1/embeddings"
    gated: Literal[True] = True

    def request_for(self, url: str, body: dict[str, Any]) -> dict[str, Any] | None:
        return _same_path(self.path, url, body)

    def decode(self, body: dict[str, Any]) -> ModelRequest:
        return decode_embedding_request(body)

    async def run(
        self,
        router: Router,
        admission: Admission[Any],
        ctx: RouteContext,
        rec: Recording,
        body: dict[str, Any],
    ) -> dict[str, Any]:
        result = await router.embed(admission.op, ctx)
        rec.counted(result.prompt_tokens)
        return embeddings_answer(admission.op, result, body)


@dataclass(slots=True)
class ClassifyExecutor:
    name: str = "classify"
    endpoint: str = "classify"
    path: str = "/v1/classify"
    gated: Literal[True] = True

    def request_for(self, url: str, body: dict[str, Any]) -> dict[str, Any] | None:
        return _same_path(self.path, url, body)

    def decode(self, body: dict[str, Any]) -> ModelRequest:
        return decode_classify_request(body)

    async def run(
        self,
        router: Router,
        admission: Admission[Any],
        ctx: RouteContext,
        rec: Recording,
        body: dict[str, Any],
    ) -> dict[str, Any]:
        del body
        result = await router.classify(admission.op, ctx)
        rec.classified(result)
        return classify_answer(admission.op, result)


class SelfGatedExecutor(Protocol):
    """An operation that passes the gate by itself while it runs (it sets ``rec.admission``)."""

    name: str
    endpoint: str
    path: str
    gated: Literal[False]

    def decode(self, body: dict[str, Any]) -> Decoded:
        """Check ``body`` when the job is submitted; raises a 400 naming the field that is wrong."""
        ...

    def request_for(self, url: str, body: dict[str, Any]) -> dict[str, Any] | None: ...

    async def execute(
        self, principal: Principal, ctx: RouteContext, rec: Recording, body: dict[str, Any]
    ) -> dict[str, Any]:
        """Admit and run ``body`` as ``principal``; the answer its sync endpoint would give."""
        ...


AnyExecutor: TypeAlias = Executor | SelfGatedExecutor


def _same_path(path: str, url: str, body: dict[str, Any]) -> dict[str, Any] | None:
    return body if url == path else None


class Executors:
    """The operations jobs can carry, by name (and by the sync path a batch line names)."""

    def __init__(self, executors: tuple[AnyExecutor, ...] = ()) -> None:
        self._by_name: dict[str, AnyExecutor] = {}
        defaults: tuple[Executor, ...] = (ChatExecutor(), EmbeddingExecutor(), ClassifyExecutor())
        for executor in executors or defaults:
            self.register(executor)

    def register(self, executor: AnyExecutor) -> None:
        self._by_name[executor.name] = executor

    def __iter__(self) -> Iterator[AnyExecutor]:
        return iter(self._by_name.values())

    def get(self, name: str) -> AnyExecutor:
        found = self._by_name.get(name)
        if found is None:
            known = ", ".join(sorted(self._by_name))
            raise RequestError(
                f"'{name}' is not an operation a job can carry (operations: {known}).",
                param="operation",
                code="invalid_operation",
            )
        return found

    def by_path(self, path: str) -> AnyExecutor | None:
        """The executor a batch line's ``url`` names."""
        return next((e for e in self._by_name.values() if e.request_for(path, {}) is not None), None)
