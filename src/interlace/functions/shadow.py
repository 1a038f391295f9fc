"""Shadow runs: a sample of a function version's calls run again on a candidate version.

A version with ``shadow: {version: "2", sample: 0.2}`` keeps answering its callers; a share of its
successful calls is run again, in the background, on the candidate version with the same input —
through the router like any call, but outside the admission gate (``RouteContext.shadow``: the
caller's quotas and budget are not charged) — and both outputs are written side by side as a
:class:`~interlace.routing.shadow.ShadowRecord`, alias ``NAME@1`` against candidate ``NAME@2``, so
``interlace shadow report`` shows agreement (identical outputs; token overlap of their JSON), latency,
errors and cost of each side, exactly as for model shadow traffic.

The caller never waits: starting a run is synchronous; the run is a task the gateway tracks until
shutdown; at most ``max_concurrent`` run at once and beyond that mirrors are dropped (``dropped``).
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from interlace.core.errors import InterlaceError
from interlace.routing.agreement import token_overlap
from interlace.routing.context import RouteContext
from interlace.routing.shadow import ShadowRecord, SideRecord

if TYPE_CHECKING:
    import random
    from collections.abc import Callable, Coroutine

    from interlace.core.principal import Principal
    from interlace.functions.definition import FunctionDefinition
    from interlace.functions.runner import FunctionResult, FunctionRunner
    from interlace.routing.shadow import ShadowSink

__all__ = ["FunctionShadowMirror"]

log = logging.getLogger("interlace.functions.shadow")


def _side(result: FunctionResult | None, error: str | None, latency: float) -> SideRecord:
    if result is None:
        return SideRecord(
            deployment=None,
            text="",
            finish=None,
            latency_ms=latency * 1000,
            prompt_tokens=None,
            completion_tokens=None,
            error=error,
            cost_usd=None,
        )
    return SideRecord(
        deployment=result.deployment,
        text=json.dumps(result.output, ensure_ascii=False, sort_keys=True),
        finish="stop",
        latency_ms=result.latency_s * 1000,
        prompt_tokens=result.usage.prompt_tokens,
        completion_tokens=result.usage.completion_tokens,
        error=None,
        cost_usd=result.cost_usd,
    )


class FunctionShadowMirror:
    """Starts and bounds the shadow runs of one runner; writes their comparisons to ``sink``."""

    def __init__(
        self,
        runner: FunctionRunner,
        sink: ShadowSink,
        *,
        track: Callable[[Coroutine[Any, Any, None]], None],
        rng: random.Random,
        max_concurrent: int = 16,
    ) -> None:
        self._runner = runner
        self._sink = sink
        self._track = track
        self._rng = rng
        self._limit = max_concurrent
        self.in_flight = 0
        self.mirrored = 0
        self.dropped = 0
        self.recorded = 0
        self.failed_records = 0

    def after(
        self,
        definition: FunctionDefinition,
        data: dict[str, Any],
        result: FunctionResult,
        principal: Principal,
    ) -> None:
        """``result`` is ready for the caller: mirror the call if its version shadows and it is sampled."""
        shadow = definition.config.shadow
        if shadow is None or self._rng.random() >= shadow.sample:
            return
        if self.in_flight >= self._limit:
            self.dropped += 1
            return
        self.in_flight += 1
        self.mirrored += 1
        self._track(self._run(definition, shadow.version, data, result, principal))

    async def _run(
        self,
        definition: FunctionDefinition,
        candidate: str,
        data: dict[str, Any],
        primary: FunctionResult,
        principal: Principal,
    ) -> None:
        began = time.perf_counter()
        result: FunctionResult | None = None
        error: str | None = None
        try:
            ctx = RouteContext(principal=principal, shadow=True)
            result = await self._runner.run(
                principal, definition.name, candidate, data, ctx=ctx, gated=False, mirror=False
            )
        except InterlaceError as exc:
            error = exc.code
        except Exception:  # a shadow run must never disturb anything: log it as its error
            log.exception("shadow run of %s@%s failed", definition.name, candidate)
            error = "internal_error"
        finally:
            self.in_flight -= 1
        latency = time.perf_counter() - began
        both = result is not None
        ours = json.dumps(primary.output, ensure_ascii=False, sort_keys=True)
        theirs = json.dumps(result.output, ensure_ascii=False, sort_keys=True) if result is not None else ""
        record = ShadowRecord(
            id=uuid.uuid4().hex,
            request_id=uuid.uuid4().hex,
            alias=f"{definition.name}@{definition.version}",
            candidate=f"{definition.name}@{candidate}",
            created_at=datetime.now(UTC),
            stream=False,
            exact_match=(result.output == primary.output) if result is not None else None,
            similarity=token_overlap(ours, theirs) if both else None,
            primary=_side(primary, None, primary.latency_s),
            shadow=_side(result, error, latency),
        )
        try:
            await self._sink.record(record)
        except Exception:
            self.failed_records += 1
            log.exception("could not record the shadow run of %s", record.alias)
        else:
            self.recorded += 1
