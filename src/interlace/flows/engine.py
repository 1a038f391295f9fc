"""The flow engine: pull deliveries, run each through the steps, write to the sinks, then acknowledge.

::

    source ──▶ [≤ max_in_flight deliveries, one task each] ──▶ step … step ──▶ sink(s) ──▶ ack
                         │ a step fails for good (after its retries)     │ every sink confirmed
                         └──────────▶ dead-letter sink ──▶ ack           └─ a sink stays down: nack

- **Backpressure.** A slot is taken *before* the next delivery is pulled, so at most
  ``max_in_flight`` deliveries are fetched and unacknowledged; when the engine stops pulling, the
  broker keeps the rest.
- **Acknowledgement.** A delivery is acked only after every output of its message was confirmed by
  its sink (a ``route`` step names the sink in ``Message.attributes["sink"]``), or after the
  dead-letter sink took it. A sink that still fails after its retries with a transient error gets the
  delivery nacked (the broker redelivers); a permanent refusal (:func:`~interlace.flows.retry.is_permanent`)
  dead-letters it.
- **Retries.** Per step (its ``retry`` or the flow's), exponential backoff with full jitter; permanent
  errors are not retried.
- **Dead letters.** The message as it entered the failing step, wrapped as
  ``{"flow", "step", "error": {"type", "code", "message"}, "message": {id, key, source, position,
  payload}}``, with its headers.
- **After the sinks.** Steps with a ``confirmed(messages)`` method (``dedupe``) hear about the outputs
  only once the sinks confirmed them, so a crash before that never records a key that was not delivered.
- **Ordering.** With ``ordering="key"``, messages with the same key run one at a time in delivery
  order (:mod:`interlace.flows.ordering`); others stay concurrent.
- **Batches.** :class:`~interlace.flows.batching.BatchStep` steps go through a
  :class:`~interlace.flows.batching.Batcher`; acks stay per input message.
- **Stop.** :meth:`FlowEngine.run` returns when ``stop`` is set (SIGTERM) or a finite source ends: it
  stops pulling, lets the in-flight messages finish for up to ``drain_timeout`` seconds, nacks the rest
  (requeue), then closes the source and sinks.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import random
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from interlace.config._flow_parts import RetryPolicy
from interlace.core.errors import InterlaceError, MessageRejected
from interlace.flows.batching import Batcher, BatchStep
from interlace.flows.metrics import FlowMetrics, FlowStats
from interlace.flows.ordering import KeySequencer, Turn
from interlace.flows.retry import is_permanent, with_retries
from interlace.flows.tracing import finish_message_trace, inject, start_message_trace

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Mapping, Sequence

    from interlace.flows.message import Delivery, Message
    from interlace.flows.ports import Sink, Source, Step
    from interlace.observability.tracing import Tracing

__all__ = ["SINK_ATTRIBUTE", "FlowEngine", "StepSlot"]

log = logging.getLogger("interlace.flows.engine")

SINK_ATTRIBUTE = "sink"
"""``Message.attributes[SINK_ATTRIBUTE]``: the named sink a ``route`` step chose."""


@dataclass(slots=True)
class StepSlot:
    """A step of a flow with its retry policy."""

    step: Step | BatchStep
    retry: RetryPolicy


class _Failed(Exception):
    """A message failed for good at ``step``: dead-letter ``message`` with ``error``."""

    def __init__(self, step: str, message: Message, error: BaseException) -> None:
        super().__init__(step)
        self.step = step
        self.message = message
        self.error = error


class _SinkDown(Exception):
    """A sink kept failing with a transient error: hand the delivery back."""


class FlowEngine:
    """Runs one flow until it is stopped or its source ends."""

    def __init__(
        self,
        name: str,
        source: Source,
        steps: Sequence[StepSlot],
        sinks: Mapping[str, Sink],
        *,
        dead_letter: Sink,
        default_sink: str | None = None,
        max_in_flight: int = 64,
        ordering: str = "none",
        retry: RetryPolicy | None = None,
        drain_timeout: float = 30.0,
        metrics: FlowMetrics | None = None,
        tracing: Tracing | None = None,
        rng: random.Random | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if not sinks:
            msg = "a flow needs at least one sink"
            raise ValueError(msg)
        self.name = name
        self.source = source
        self.steps = list(steps)
        self.sinks = dict(sinks)
        self.default_sink = default_sink or next(iter(self.sinks))
        self.dead_letter = dead_letter
        self.max_in_flight = max_in_flight
        self.ordered = ordering == "key"
        self.retry = retry or RetryPolicy()
        self.drain_timeout = drain_timeout
        self.metrics = metrics
        self.tracing = tracing
        self.stats = FlowStats()
        self._rng = rng or random.Random()  # noqa: S311 - backoff jitter
        self._sleep = sleep
        self._batchers: dict[int, Batcher] = {
            index: Batcher(
                slot.step,
                slot.retry,
                rng=self._rng,
                sleep=sleep,
                on_error=functools.partial(self._count_error, slot.step.name),
            )
            for index, slot in enumerate(self.steps)
            if isinstance(slot.step, BatchStep)
        }
        self._sequencer = KeySequencer()
        self._tasks: set[asyncio.Task[None]] = set()
        self._confirming = [s.step for s in self.steps if callable(getattr(s.step, "confirmed", None))]

    # --- lifecycle ---

    async def run(self, stop: asyncio.Event | None = None) -> FlowStats:
        """Process until ``stop`` is set or the source ends; drain; close everything started."""
        stop = stop or asyncio.Event()
        started: list[Source | Sink] = []
        try:
            parts: list[Source | Sink] = [self.dead_letter, *self._unique_sinks(), self.source]
            for part in parts:
                await part.start()
                started.append(part)
            consumer = asyncio.create_task(self._consume(), name=f"flow {self.name} consumer")
            stopping = asyncio.create_task(stop.wait())
            await asyncio.wait({consumer, stopping}, return_when=asyncio.FIRST_COMPLETED)
            stopping.cancel()
            if not consumer.done():
                consumer.cancel()
                await asyncio.wait({consumer})
                await self._drain(self.drain_timeout)
            else:
                failure = None if consumer.cancelled() else consumer.exception()
                await self._drain(None if failure is None and not stop.is_set() else self.drain_timeout)
                if failure is not None:
                    raise failure
        finally:
            for batcher in self._batchers.values():
                await batcher.aclose()
            for part in reversed(started):
                try:
                    await part.aclose()
                except Exception:
                    log.exception("flow %s: could not close %s", self.name, getattr(part, "name", part))
        return self.stats

    def _unique_sinks(self) -> list[Sink]:
        seen: list[Sink] = []
        for sink in self.sinks.values():
            if all(sink is not other for other in seen) and sink is not self.dead_letter:
                seen.append(sink)
        return seen

    async def _consume(self) -> None:
        slots = asyncio.Semaphore(self.max_in_flight)
        deliveries = self.source.deliveries(max_in_flight=self.max_in_flight)
        try:
            while True:
                await slots.acquire()
                try:
                    delivery = await anext(deliveries)
                except StopAsyncIteration:
                    slots.release()
                    return
                except BaseException:
                    slots.release()
                    raise
                turn = self._sequencer.turn(delivery.message.key if self.ordered else None)
                task = asyncio.create_task(self._handle(delivery, turn))
                self._tasks.add(task)
                self._in_flight(+1)
                task.add_done_callback(functools.partial(self._done, turn=turn, slots=slots))
        finally:
            closing = getattr(deliveries, "aclose", None)
            if closing is not None:
                with contextlib.suppress(Exception, asyncio.CancelledError):
                    await closing()

    def _done(self, task: asyncio.Task[None], *, turn: Turn, slots: asyncio.Semaphore) -> None:
        self._tasks.discard(task)
        turn.abandon()
        slots.release()
        self._in_flight(-1)
        if not task.cancelled() and task.exception() is not None:
            log.error("flow %s: a message task failed", self.name, exc_info=task.exception())

    def _in_flight(self, change: int) -> None:
        self.stats.in_flight += change
        if self.metrics is not None:
            self.metrics.in_flight.labels(self.name).set(self.stats.in_flight)

    async def _drain(self, limit: float | None) -> None:
        """Let in-flight messages finish (up to ``limit`` s; None: all of them); cancel the rest."""
        if not self._tasks:
            return
        pending = set(self._tasks)
        if limit is None or limit > 0:
            _, pending = await asyncio.wait(pending, timeout=limit)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending)
            log.warning("flow %s: %d in-flight message(s) nacked at stop", self.name, len(pending))

    # --- one message ---

    async def _handle(self, delivery: Delivery, turn: Turn) -> None:
        message = delivery.message
        self.stats.received += 1
        if self.metrics is not None:
            self.metrics.received.labels(self.name).inc()
        trace = None
        outcome = "error"
        try:
            async with turn:
                trace = start_message_trace(self.tracing, self.name, message)
                outcome = await self._process(delivery, message, trace)
        except asyncio.CancelledError:
            outcome = "nacked"
            await asyncio.shield(self._nack(delivery))
            raise
        except Exception:
            log.exception("flow %s: message %s failed unexpectedly; nacked", self.name, message.id)
            await self._nack(delivery)
        finally:
            finish_message_trace(trace, outcome)

    async def _process(self, delivery: Delivery, message: Message, trace: Any) -> str:
        try:
            outputs = await self._run_steps(message)
            for output in outputs:
                inject(trace, output)
            await self._write(outputs)
        except _Failed as failed:
            inject(trace, failed.message)
            if not await self._dead_letter(failed):
                await self._nack(delivery)
                return "nacked"
            await self._ack(delivery)
            return "dead_letter"
        except _SinkDown:
            await self._nack(delivery)
            return "nacked"
        await self._confirmed(outputs)
        if not outputs:
            self.stats.dropped += 1
        await self._ack(delivery)
        return "ok"

    async def _run_steps(self, message: Message) -> list[Message]:
        messages = [message]
        for index, slot in enumerate(self.steps):
            name = slot.step.name
            produced: list[Message] = []
            for current in messages:
                try:
                    produced.extend(await self._run_step(index, slot, current))
                except Exception as exc:
                    self._count_step(name, "error")
                    raise _Failed(name, current, exc) from exc
                self._count_step(name, "ok")
            messages = produced
            if not messages:
                break
        return messages

    async def _run_step(self, index: int, slot: StepSlot, message: Message) -> Sequence[Message]:
        batcher = self._batchers.get(index)
        if batcher is not None:  # the batcher retries the whole batch
            return await batcher.submit(message)
        step = slot.step
        assert not isinstance(step, BatchStep)
        return await with_retries(
            lambda: step.process(message),
            slot.retry,
            rng=self._rng,
            sleep=self._sleep,
            on_error=lambda exc: self._count_error(step.name, exc),
        )

    async def _write(self, outputs: Sequence[Message]) -> None:
        groups: dict[str, list[Message]] = {}
        for output in outputs:
            target = output.attributes.get(SINK_ATTRIBUTE) or self.default_sink
            groups.setdefault(str(target), []).append(output)
        unknown = [name for name in groups if name not in self.sinks]
        if unknown:
            first = groups[unknown[0]][0]
            error = MessageRejected(f"no sink named '{unknown[0]}' (sinks: {', '.join(self.sinks)})")
            raise _Failed(f"sink:{unknown[0]}", first, error)
        results = await asyncio.gather(
            *(self._write_one(name, batch) for name, batch in groups.items()), return_exceptions=True
        )
        failures = [r for r in results if isinstance(r, BaseException)]
        for failure in failures:
            if isinstance(failure, asyncio.CancelledError):
                raise failure
        for failure in failures:  # a permanent refusal dead-letters; a sink still down hands back
            if isinstance(failure, _Failed):
                raise failure
        if failures:
            raise _SinkDown from failures[0]

    async def _write_one(self, name: str, batch: list[Message]) -> None:
        sink = self.sinks[name]
        step = f"sink:{name}"
        try:
            await with_retries(
                lambda: sink.write(batch),
                self.retry,
                rng=self._rng,
                sleep=self._sleep,
                on_error=lambda exc: self._count_error(step, exc),
            )
        except Exception as exc:
            if is_permanent(exc):
                raise _Failed(step, batch[0], exc) from exc
            log.warning("flow %s: sink %s failed (%s); the message is handed back", self.name, name, exc)
            raise
        self.stats.out += len(batch)
        if self.metrics is not None:
            self.metrics.out.labels(self.name, name).inc(len(batch))

    async def _confirmed(self, outputs: Sequence[Message]) -> None:
        if not outputs:
            return
        for step in self._confirming:
            try:
                await step.confirmed(outputs)  # type: ignore[union-attr]
            except Exception:  # the outputs are delivered: a lost dedupe key means a possible duplicate
                log.exception("flow %s: step %s could not record delivered messages", self.name, step.name)

    async def _dead_letter(self, failed: _Failed) -> bool:
        error = failed.error
        original = failed.message
        body = {
            "flow": self.name,
            "step": failed.step,
            "error": {
                "type": type(error).__name__,
                "code": error.code if isinstance(error, InterlaceError) else None,
                "message": str(error)[:2000],
            },
            "message": {
                "id": original.id,
                "key": original.key,
                "source": original.source,
                "position": original.position,
                "payload": original.payload,
            },
        }
        letter = original.derive(body, attributes={})
        letter.headers["interlace-dead-letter-step"] = failed.step
        try:
            await with_retries(
                lambda: self.dead_letter.write([letter]), self.retry, rng=self._rng, sleep=self._sleep
            )
        except Exception:
            log.exception(
                "flow %s: the dead-letter sink failed; message %s handed back", self.name, original.id
            )
            return False
        log.warning("flow %s: message %s dead-lettered at %s: %s", self.name, original.id, failed.step, error)
        self.stats.dead_letters += 1
        self.stats.step(failed.step, "dead_letters")
        if self.metrics is not None:
            self.metrics.dead_letters.labels(self.name, failed.step).inc()
        return True

    async def _ack(self, delivery: Delivery) -> None:
        await delivery.ack()
        self.stats.acked += 1
        if self.metrics is not None:
            self.metrics.acked.labels(self.name).inc()

    async def _nack(self, delivery: Delivery) -> None:
        try:
            await delivery.nack(requeue=True)
        except Exception:  # the source redelivers what it never got an ack for
            log.exception("flow %s: nack of %s failed", self.name, delivery.message.id)
        self.stats.nacked += 1
        if self.metrics is not None:
            self.metrics.nacked.labels(self.name).inc()

    def _count_step(self, step: str, outcome: str) -> None:
        self.stats.step(step, outcome)
        if self.metrics is not None:
            self.metrics.steps.labels(self.name, step, outcome).inc()

    def _count_error(self, step: str, _: BaseException) -> None:
        self.stats.errors += 1
        if self.metrics is not None:
            self.metrics.errors.labels(self.name, step).inc()
