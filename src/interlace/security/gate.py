"""The admission chain: the policies a request passes before the router, unwound after its answer.

::

    route ─▶ Gate.admit(call)  scopes → residency → PII mask → rate limits → budgets
          ─▶ router (with call.op, possibly masked; ctx restricted to allowed deployments)
          ◀─ Admission.restore(answer) / restore_stream(chunks)   PII unmask, in reverse order
          ◀─ Admission.settle(record)                               quota and budget settle/refund

Each :class:`Policy` looks at the :class:`Call` and either rejects it (raises an
:class:`~interlace.core.errors.InterlaceError`: 403, 429, 400 …), changes it (``call.op`` masked,
``call.ctx`` restricted), or lets it through; what it must undo or settle later it returns as a
:class:`Hold`. Policies note what they decided in ``ctx.decisions`` (for the audit log) and may add
response headers to ``ctx.headers_out`` (``x-ratelimit-*``).

Settling must not delay the answer: :meth:`Admission.settle` is called once by the request's recording
when the request is finished (after its response is written). A hold whose state is at hand (the
in-process quota store) settles there and then (:meth:`Hold.settle_at_once`); the rest settle
asynchronously (Redis, the database) in a task the gate tracks, and :meth:`Gate.aclose` waits for
those still running. (A task per request cost more than the in-process settlement itself.)
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from interlace.core.errors import PermissionDenied
from interlace.core.operations import ModelRequest

if TYPE_CHECKING:
    from collections.abc import Sequence

    from interlace.core.operations import ChatChunks
    from interlace.core.principal import Principal
    from interlace.observability.record import RequestRecord
    from interlace.routing.context import RouteContext

__all__ = ["Admission", "Call", "Gate", "Hold", "Policy", "ScopePolicy"]

log = logging.getLogger("interlace.security.gate")

RequestT = TypeVar("RequestT", bound=ModelRequest)


@dataclass(slots=True)
class Call(Generic[RequestT]):
    """One request on its way to the router."""

    principal: Principal
    endpoint: str
    """The endpoint family (:data:`~interlace.core.principal.ENDPOINTS`)."""
    op: RequestT
    """What will be routed; a policy may replace it (masking)."""
    ctx: RouteContext


class Hold:
    """What a policy keeps for a request it admitted: undone or settled when the request ends."""

    def restore(self, answer: dict[str, Any]) -> dict[str, Any]:
        """A complete chat answer (OpenAI-shaped), with what the policy changed put back."""
        return answer

    def restore_stream(self, chunks: ChatChunks) -> ChatChunks:
        """A chat stream, with what the policy changed put back chunk by chunk."""
        return chunks

    async def settle(self, record: RequestRecord) -> None:
        """The request is finished (``record`` has its status, usage and cost): settle or refund."""

    def settle_at_once(self, record: RequestRecord) -> bool:  # noqa: ARG002 - a default hook
        """Settle as :meth:`settle` does, now, if that needs no I/O (True); False leaves it to
        :meth:`settle`. Holds with nothing to settle say True."""
        return type(self).settle is Hold.settle

    async def release(self) -> None:
        """A later policy rejected the request: it never reached a model; give back what was reserved."""


class Policy(Protocol):
    name: str

    async def admit(self, call: Call[Any]) -> Hold | None:
        """Let ``call`` through (returning what to undo or settle later), change it, or raise."""
        ...


class ScopePolicy:
    """A key or token scoped to some models or endpoints may use only those: 403 otherwise."""

    name = "scopes"

    async def admit(self, call: Call[Any]) -> Hold | None:
        principal = call.principal
        if not principal.may_call(call.endpoint):
            allowed = ", ".join(sorted(principal.endpoints or ()))
            raise PermissionDenied(
                f"credential '{principal.id}' may not call {call.endpoint} endpoints (allowed: {allowed})",
                code="endpoint_not_allowed",
            )
        model = call.op.model
        if not principal.may_use_model(model):
            allowed = ", ".join(sorted(principal.models or ()))
            raise PermissionDenied(
                f"credential '{principal.id}' may not use model '{model}' (allowed: {allowed})",
                code="model_not_allowed",
                param="model",
            )
        return None


class Admission(Generic[RequestT]):
    """An admitted request's holds, unwound in reverse order."""

    __slots__ = ("_gate", "_holds", "_settled", "op")

    def __init__(self, gate: Gate, op: RequestT, holds: Sequence[Hold]) -> None:
        self._gate = gate
        self._holds = tuple(reversed(holds))
        self._settled = False
        self.op = op

    def restore(self, answer: dict[str, Any]) -> dict[str, Any]:
        for hold in self._holds:
            answer = hold.restore(answer)
        return answer

    def restore_stream(self, chunks: ChatChunks) -> ChatChunks:
        for hold in self._holds:
            chunks = hold.restore_stream(chunks)
        return chunks

    def settle(self, record: RequestRecord) -> None:
        """Called once, when the request is finished: the holds settle in order, at once while they
        can, the rest in a task the gate tracks."""
        if self._settled:
            return
        self._settled = True
        holds = self._holds
        for index, hold in enumerate(holds):
            try:
                if hold.settle_at_once(record):
                    continue
            except Exception as exc:  # one hold's failure must not keep the others from settling
                _failed(hold, record, exc)
                continue
            self._gate.track(_settle(holds[index:], record))
            return


async def _settle(holds: Sequence[Hold], record: RequestRecord) -> None:
    for hold in holds:
        try:
            await hold.settle(record)
        except Exception as exc:  # one hold's failure must not keep the others from settling
            _failed(hold, record, exc)


def _failed(hold: Hold, record: RequestRecord, exc: Exception) -> None:
    log.error("could not settle %s for request %s", type(hold).__name__, record.request_id, exc_info=exc)


class Gate:
    """The ordered policies of one gateway; built once from config by the runtime."""

    def __init__(self, policies: Sequence[Policy] = ()) -> None:
        self.policies: list[Policy] = [ScopePolicy(), *policies]
        self._tasks: set[asyncio.Task[None]] = set()

    async def admit(self, call: Call[RequestT]) -> Admission[RequestT]:
        """Run ``call`` through every policy; a rejection releases what earlier policies reserved."""
        holds: list[Hold] = []
        try:
            for policy in self.policies:
                hold = await policy.admit(call)
                if hold is not None:
                    holds.append(hold)
        except BaseException:
            for hold in reversed(holds):  # nothing was routed: give back what earlier policies took
                self.track(hold.release())
            raise
        return Admission(self, call.op, holds)

    def track(self, work: Any) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def aclose(self) -> None:
        """Wait for every settlement still running (the runtime stops the stores after this)."""
        while self._tasks:
            await asyncio.gather(*tuple(self._tasks), return_exceptions=True)
