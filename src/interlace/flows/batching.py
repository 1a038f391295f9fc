"""Steps that need several messages at once: group up to ``size`` messages, or ``window`` seconds' worth.

A :class:`BatchStep` answers a whole batch in one call (one embedding request for 32 texts) with the
outputs of each input, in input order. The engine keeps its per-message model: each message's task
calls :meth:`Batcher.submit` and waits for its own outputs, so acknowledgements, retries of the
message's later steps, dead letters and ordering stay per input message. A batch is flushed when it is
full or when its first message has waited ``window`` seconds; it is retried as a whole, and when it
fails for good every message in it fails (and is dead-lettered) with that error.

A batch can only fill up to the flow's ``max_in_flight``: a smaller bound flushes by time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from interlace.flows.retry import with_retries

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Sequence

    from interlace.config._flow_parts import RetryPolicy
    from interlace.flows.message import Message

__all__ = ["BatchStep", "Batcher"]

log = logging.getLogger("interlace.flows.batching")


@runtime_checkable
class BatchStep(Protocol):
    name: str
    size: int
    """Messages in a full batch."""
    window: float
    """Seconds the first message of a batch waits at most."""

    async def process_batch(self, messages: Sequence[Message]) -> Sequence[Sequence[Message]]:
        """The outputs of each input message, in input order (one sequence per input)."""
        ...


class Batcher:
    """Collects the messages of one batch step and runs each batch once it is full or old enough."""

    __slots__ = ("_on_error", "_pending", "_retry", "_rng", "_sleep", "_tasks", "_timer", "step")

    def __init__(
        self,
        step: BatchStep,
        retry: RetryPolicy,
        *,
        rng: random.Random | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        on_error: Callable[[BaseException], None] | None = None,
    ) -> None:
        self.step = step
        self._on_error = on_error
        self._retry = retry
        self._rng = rng or random.Random()  # noqa: S311 - backoff jitter
        self._sleep = sleep
        self._pending: list[tuple[Message, asyncio.Future[Sequence[Message]]]] = []
        self._timer: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def submit(self, message: Message) -> Sequence[Message]:
        """``message``'s outputs, once its batch ran."""
        future: asyncio.Future[Sequence[Message]] = asyncio.get_running_loop().create_future()
        self._pending.append((message, future))
        if len(self._pending) >= self.step.size:
            self._flush()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self.step.window, self._flush)
        return await future

    def _flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        batch = [(m, f) for m, f in self._pending if not f.done()]  # cancelled waiters are left out
        self._pending = []
        if batch:
            task = asyncio.create_task(self._run(batch))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _run(self, batch: list[tuple[Message, asyncio.Future[Sequence[Message]]]]) -> None:
        messages = [message for message, _ in batch]
        try:
            outputs = await with_retries(
                lambda: self.step.process_batch(messages),
                self._retry,
                rng=self._rng,
                sleep=self._sleep,
                on_error=self._on_error,
            )
            if len(outputs) != len(batch):
                msg = f"batch step '{self.step.name}' answered {len(outputs)} results for {len(batch)} inputs"
                raise RuntimeError(msg)
        except Exception as exc:
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        for (_, future), output in zip(batch, outputs, strict=True):
            if not future.done():
                future.set_result(output)

    async def aclose(self) -> None:
        """Run what is pending now, and wait for the batches still running."""
        self._flush()
        if self._tasks:
            with contextlib.suppress(Exception):
                await asyncio.gather(*self._tasks, return_exceptions=True)
