"""A flow process: the runtime's services, the engines of the chosen flows, their state reports.

``interlace flow run`` builds one :class:`FlowProcess` over a :class:`~interlace.runtime.Runtime`
(router, gate, AI functions, state database, Redis, tracing, the observers that record each AI
call), runs its flows concurrently until ``stop`` is set (SIGTERM, SIGINT) or every source ended,
and reports each flow's :class:`~interlace.flows.metrics.FlowStats` to ``flow_state`` every
``report_interval`` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from pathlib import Path
from typing import TYPE_CHECKING

from interlace.core.errors import ConfigError
from interlace.flows.build import build_flow, flow_principal
from interlace.flows.metrics import FlowMetrics
from interlace.flows.services import FlowServices
from interlace.flows.state import FlowStateStore
from interlace.functions.runner import FunctionRunner
from interlace.gateway.recording import Recorder

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from interlace.flows.engine import FlowEngine
    from interlace.flows.metrics import FlowStats
    from interlace.runtime import Runtime

__all__ = ["FlowProcess"]

log = logging.getLogger("interlace.flows.process")


class FlowProcess:
    def __init__(
        self,
        runtime: Runtime,
        names: Sequence[str],
        *,
        report_interval: float = 2.0,
        on_progress: Callable[[dict[str, FlowStats]], None] | None = None,
    ) -> None:
        config = runtime.config
        unknown = [name for name in names if name not in config.flows]
        if unknown or not names:
            known = ", ".join(sorted(config.flows)) or "none"
            what = f"no flow named '{unknown[0]}'" if unknown else "no flow to run"
            raise ConfigError(f"{what} — flows in this configuration: {known}")
        self.runtime = runtime
        self.process = f"{socket.gethostname()[:40]}:{os.getpid()}"
        self.metrics = FlowMetrics(runtime.metrics.registry if runtime.metrics is not None else None)
        self.report_interval = report_interval
        self.on_progress = on_progress
        recorder = Recorder(
            runtime.observers,
            runtime.router.routes,
            capture_content=config.observability.logs.include_content,
            audit_content=config.audit.content if config.audit.enabled else "none",
        )
        functions = FunctionRunner.from_config(config.functions, runtime.router, runtime.gate)
        self.engines: dict[str, FlowEngine] = {}
        for name in names:
            flow = config.flows[name]
            services = FlowServices(
                flow=name,
                principal=flow_principal(name, flow),
                config=config,
                router=runtime.router,
                gate=runtime.gate,
                functions=functions,
                recorder=recorder,
                database=runtime.database,
                redis=runtime.redis,
                redis_prefix=config.redis.prefix if config.redis is not None else "interlace",
                pii=runtime.pii,
                tracing=runtime.tracing if runtime.tracing.enabled else None,
                state_dir=Path(config.state.dir),
            )
            self.engines[name] = build_flow(name, flow, services, metrics=self.metrics)
        self.state = FlowStateStore(runtime.database)

    async def run(self, stop: asyncio.Event) -> dict[str, FlowStats]:
        """Run every flow until ``stop`` is set or all their sources ended; a failing flow stops the rest."""
        reporter = asyncio.create_task(self._report_loop())
        runs = {
            name: asyncio.create_task(engine.run(stop), name=f"flow {name}")
            for name, engine in self.engines.items()
        }
        try:
            done, _ = await asyncio.wait(runs.values(), return_when=asyncio.FIRST_EXCEPTION)
            failed = [task for task in done if not task.cancelled() and task.exception() is not None]
            if failed:
                stop.set()  # the others drain and stop too
                await asyncio.wait(runs.values())
                raise failed[0].exception()  # type: ignore[misc]
        finally:
            reporter.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reporter
            await self._report("stopped")
        return {name: engine.stats for name, engine in self.engines.items()}

    async def _report_loop(self) -> None:
        while True:
            await asyncio.sleep(self.report_interval)
            await self._report("running")

    async def _report(self, status: str) -> None:
        for name, engine in self.engines.items():
            lag = getattr(engine.source, "lag", None)
            if callable(lag):
                with contextlib.suppress(Exception):
                    engine.stats.lag = await lag()
                    if engine.stats.lag is not None:
                        self.metrics.lag.labels(name).set(engine.stats.lag)
            try:
                await self.state.report(name, self.process, status, engine.stats)
            except Exception:  # reporting is best effort: the flow itself goes on
                log.exception("flow %s: could not report its state", name)
        if self.on_progress is not None:
            self.on_progress({name: engine.stats for name, engine in self.engines.items()})
