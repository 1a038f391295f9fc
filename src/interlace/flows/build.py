"""A :class:`~interlace.flows.engine.FlowEngine` from a flow's configuration and its services.

Each part's factory comes from :mod:`interlace.flows.registry`. Without ``dead_letter:`` a flow's
poison messages go to the event log (stream ``<flow>.dead_letter``) when the process has a state
database, else to ``<state dir>/flows/<flow>.dead_letter.jsonl``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from interlace.core.errors import ConfigError, InterlaceError
from interlace.core.principal import Principal
from interlace.flows.connectors.event_log.config import EventLogSinkConfig
from interlace.flows.connectors.files.config import FilesSinkConfig
from interlace.flows.engine import FlowEngine, StepSlot
from interlace.flows.registry import SINKS, SOURCES, STEPS, entry_for

if TYPE_CHECKING:
    from pydantic import BaseModel

    from interlace.config.flows import FlowConfig
    from interlace.flows.metrics import FlowMetrics
    from interlace.flows.ports import Sink
    from interlace.flows.registry import Entry
    from interlace.flows.services import FlowServices

__all__ = ["build_flow", "dead_letter_stream", "flow_principal"]


def dead_letter_stream(flow: str) -> str:
    return f"{flow}.dead_letter"


def flow_principal(name: str, config: FlowConfig) -> Principal:
    """The principal a flow's AI calls run as (``flows.<name>.principal``)."""
    settings = config.principal
    return Principal(
        kind="key",
        id=settings.id or f"flow:{name}",
        tenant=settings.tenant,
        team=settings.team,
        models=frozenset(settings.models) if settings.models is not None else None,
        metadata={"flow": name},
    )


def _build(entries: tuple[Entry, ...], config: BaseModel, services: FlowServices) -> Any:
    try:
        return entry_for(entries, config).load()(config, services)
    except ConfigError:
        raise
    except InterlaceError as exc:  # a function or model the part names does not exist …
        raise ConfigError(f"flows.{services.flow} ({services.part}): {exc.message}") from None


def build_flow(
    name: str, config: FlowConfig, services: FlowServices, *, metrics: FlowMetrics | None = None
) -> FlowEngine:
    """The engine of flow ``name``: its source, steps, sinks and dead-letter sink built, none started."""
    source = _build(SOURCES, config.source, services.for_part("source"))
    slots = []
    for index, step_config in enumerate(config.steps):
        label = step_config.name or f"{step_config.type}-{index}"
        step = _build(STEPS, step_config, services.for_part(f"step:{label}"))
        step.name = label
        slots.append(StepSlot(step, step_config.retry or config.retry))
    sinks: dict[str, Sink] = {}
    if config.sink is not None:
        sinks["default"] = _build(SINKS, config.sink, services.for_part("sink:default"))
    for sink_name, sink_config in config.sinks.items():
        sinks[sink_name] = _build(SINKS, sink_config, services.for_part(f"sink:{sink_name}"))
    dead: BaseModel
    if config.dead_letter is not None:
        dead = config.dead_letter
    elif services.database is not None:
        dead = EventLogSinkConfig(type="event_log", stream=dead_letter_stream(name))
    else:
        path = services.state_dir / "flows" / f"{dead_letter_stream(name)}.jsonl"
        dead = FilesSinkConfig(type="files", path=str(path))
    return FlowEngine(
        name,
        source,
        slots,
        sinks,
        dead_letter=_build(SINKS, dead, services.for_part("dead_letter")),
        default_sink=config.default_sink,
        max_in_flight=config.max_in_flight,
        ordering=config.ordering,
        retry=config.retry,
        drain_timeout=config.drain_timeout,
        metrics=metrics,
        tracing=services.tracing,
    )
