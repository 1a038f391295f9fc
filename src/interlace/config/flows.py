"""``flows:``: event-driven pipelines by name — a source, steps, and the sink(s) they end in.

::

    flows:
      tickets:
        source: {type: webhook}
        steps:
          - {type: mask, fields: [text]}
          - {type: function, function: ticket_triage, input: '{"text": text}', into: triage}
          - type: route
            cases: [{when: 'payload.triage.label == "billing"', sink: billing}]
            default: rest
        sinks:
          billing: {type: files, path: out/billing.jsonl}
          rest: {type: files, path: out/rest.jsonl}
        dead_letter: {type: event_log, stream: tickets.dead}
        max_in_flight: 32
        ordering: key
        principal: {tenant: support}

``type`` picks the connector or step from :mod:`interlace.flows.registry`; an unknown type is an
error at its line that lists the known ones. A flow acknowledges a message at its source only after
every sink confirmed it (or the dead-letter sink took it).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Annotated, Literal, Union

from pydantic import Discriminator, Field, model_validator

from interlace.config._base import Strict
from interlace.config._flow_parts import ConnectorConfig, RetryPolicy, StepConfigBase
from interlace.flows.registry import SINKS, SOURCES, STEPS

__all__ = [
    "FlowConfig",
    "FlowPrincipalConfig",
    "RetryPolicy",
    "SinkConfig",
    "SourceConfig",
    "StepConfig",
    "check_flow_names",
]

_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,63}$")


def _union(entries: tuple[object, ...], what: str) -> object:
    models = tuple(entry.config for entry in entries)  # type: ignore[attr-defined]
    known = ", ".join(entry.type for entry in entries)  # type: ignore[attr-defined]
    return Annotated[
        Union[models],  # noqa: UP007 - built from the registry at import
        Discriminator(
            "type",
            custom_error_type=f"unknown_{what}_type",
            custom_error_message=f"'type' must name a {what} — known {what} types: {known}",
        ),
    ]


if TYPE_CHECKING:
    SourceConfig = ConnectorConfig
    SinkConfig = ConnectorConfig
    StepConfig = StepConfigBase
else:
    SourceConfig = _union(SOURCES, "source")
    SinkConfig = _union(SINKS, "sink")
    StepConfig = _union(STEPS, "step")


class FlowPrincipalConfig(Strict):
    """Who the flow's AI calls run as: quotas, budgets, PII rules and the audit log apply to it."""

    id: str | None = Field(None, description="Shown in the audit log and usage; default 'flow:<name>'.")
    tenant: str | None = Field(None, description="The tenant charged (its tenants: policies apply).")
    team: str | None = None
    models: list[str] | None = Field(None, description="Model aliases it may use; default every one.")


class FlowConfig(Strict):
    """One flow: ``source → steps → sink`` (or ``sinks`` by name, picked by a ``route`` step)."""

    description: str | None = None
    source: SourceConfig
    steps: list[StepConfig] = Field(default_factory=list)
    sink: SinkConfig | None = Field(None, description="The one sink; or name several under sinks:.")
    sinks: dict[str, SinkConfig] = Field(default_factory=dict, description="Named sinks for route steps.")
    default_sink: str | None = Field(
        None, description="With sinks:, where unrouted messages go; default the first sink."
    )
    dead_letter: SinkConfig | None = Field(
        None, description="Where poison messages go with their error and step; default the event log."
    )
    max_in_flight: int = Field(64, ge=1, le=100_000, description="Unacknowledged messages at most.")
    ordering: Literal["none", "key"] = Field(
        "none", description="'key': messages with the same key are processed one at a time, in order."
    )
    retry: RetryPolicy = Field(default_factory=RetryPolicy, description="Default retries of steps and sinks.")
    drain_timeout: float = Field(
        30.0, ge=0, description="On stop, seconds in-flight messages may finish; the rest are nacked."
    )
    principal: FlowPrincipalConfig = Field(default_factory=FlowPrincipalConfig)

    @model_validator(mode="after")
    def _sinks(self) -> FlowConfig:
        if (self.sink is None) == (not self.sinks):
            msg = "a flow needs exactly one of sink: or sinks: {name: {...}}"
            raise ValueError(msg)
        names = set(self.sinks) if self.sinks else {"default"}
        if self.default_sink is not None and self.default_sink not in names:
            msg = f"default_sink '{self.default_sink}' is not under sinks: ({', '.join(sorted(names))})"
            raise ValueError(msg)
        for index, step in enumerate(self.steps):
            targets = [case.sink for case in getattr(step, "cases", ())]
            default = getattr(step, "default", None)
            targets += [default] if isinstance(default, str) else []
            unknown = [t for t in targets if t not in names]
            if unknown:
                msg = (
                    f"steps[{index}] routes to '{unknown[0]}', which is not under sinks: "
                    f"({', '.join(sorted(names))})"
                )
                raise ValueError(msg)
        return self

    @property
    def sink_names(self) -> list[str]:
        return list(self.sinks) if self.sinks else ["default"]


def check_flow_names(flows: dict[str, FlowConfig]) -> dict[str, FlowConfig]:
    for name in flows:
        if not _NAME.match(name):
            msg = f"flow name '{name}' must be 1-64 characters of letters, digits and _.- (a letter first)"
            raise ValueError(msg)
    return flows
