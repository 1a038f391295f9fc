"""Which ``type`` names which connector or step: its config model and the factory that builds it.

One line per connector. The config models are imported here (they are plain pydantic models), and
:mod:`interlace.config.flows` builds its discriminated unions on ``type`` from these tuples, so an
unknown type is a configuration error at ``file:line`` listing the known ones. Factories are named
``"module:attribute"`` and imported only when a flow is built, so a broker's client library is loaded
only by the flows that use it. A factory is called as ``factory(config, services)`` with the
:class:`~interlace.flows.services.FlowServices` of its flow and returns a
:class:`~interlace.flows.ports.Source`, :class:`~interlace.flows.ports.Sink` or
:class:`~interlace.flows.ports.Step`.

Adding a connector: a ``config.py`` with a model whose ``type`` is a ``Literal``, the implementation,
and one :class:`Entry` below.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from interlace.flows.connectors.event_log.config import EventLogSinkConfig
from interlace.flows.connectors.files.config import FilesSinkConfig, FilesSourceConfig
from interlace.flows.connectors.http.config import HttpSinkConfig
from interlace.flows.connectors.kafka.config import KafkaSinkConfig, KafkaSourceConfig
from interlace.flows.connectors.mqtt.config import MqttSinkConfig, MqttSourceConfig
from interlace.flows.connectors.nats.config import NatsSinkConfig, NatsSourceConfig
from interlace.flows.connectors.postgres.config import (
    PostgresCdcConfig,
    PostgresOutboxConfig,
    PostgresSinkConfig,
)
from interlace.flows.connectors.rabbitmq.config import RabbitSinkConfig, RabbitSourceConfig
from interlace.flows.connectors.redis_streams.config import RedisStreamSinkConfig, RedisStreamSourceConfig
from interlace.flows.connectors.webhook.config import WebhookSourceConfig
from interlace.flows.steps.config import (
    BatchStepConfig,
    ChatStepConfig,
    ClassifyStepConfig,
    DedupeStepConfig,
    EmbedStepConfig,
    FilterStepConfig,
    FunctionStepConfig,
    MapStepConfig,
    MaskStepConfig,
    RouteStepConfig,
    UnmaskStepConfig,
)
from interlace.flows.steps.enrich import EnrichStepConfig

if TYPE_CHECKING:
    from collections.abc import Callable

    from pydantic import BaseModel

__all__ = ["SINKS", "SOURCES", "STEPS", "Entry", "entry_for"]


@dataclass(frozen=True, slots=True)
class Entry:
    """A ``type``: its config model and its factory (``"package.module:callable"``)."""

    config: type[BaseModel]
    factory: str

    @property
    def type(self) -> str:
        return str(self.config.model_fields["type"].annotation.__args__[0])  # type: ignore[union-attr]

    def load(self) -> Callable[..., Any]:
        module, _, attribute = self.factory.partition(":")
        built: Callable[..., Any] = getattr(importlib.import_module(module), attribute)
        return built


_C = "interlace.flows.connectors"
_S = "interlace.flows.steps"

SOURCES: Final[tuple[Entry, ...]] = (
    Entry(WebhookSourceConfig, f"{_C}.webhook.source:WebhookSource"),
    Entry(FilesSourceConfig, f"{_C}.files.source:FilesSource"),
    # --- broker sources (F2) ---
    Entry(NatsSourceConfig, f"{_C}.nats.source:NatsSource"),
    Entry(RabbitSourceConfig, f"{_C}.rabbitmq.source:RabbitSource"),
    Entry(RedisStreamSourceConfig, f"{_C}.redis_streams.source:RedisStreamSource"),
    Entry(MqttSourceConfig, f"{_C}.mqtt.source:MqttSource"),
    Entry(KafkaSourceConfig, f"{_C}.kafka.source:KafkaSource"),
    # --- Postgres sources (F3) ---
    Entry(PostgresCdcConfig, f"{_C}.postgres.cdc:PostgresCdcSource"),
    Entry(PostgresOutboxConfig, f"{_C}.postgres.outbox:PostgresOutboxSource"),
)

SINKS: Final[tuple[Entry, ...]] = (
    Entry(FilesSinkConfig, f"{_C}.files.sink:FilesSink"),
    Entry(HttpSinkConfig, f"{_C}.http.sink:HttpSink"),
    Entry(EventLogSinkConfig, f"{_C}.event_log.sink:EventLogSink"),
    # --- broker sinks (F2) ---
    Entry(NatsSinkConfig, f"{_C}.nats.sink:NatsSink"),
    Entry(RabbitSinkConfig, f"{_C}.rabbitmq.sink:RabbitSink"),
    Entry(RedisStreamSinkConfig, f"{_C}.redis_streams.sink:RedisStreamSink"),
    Entry(MqttSinkConfig, f"{_C}.mqtt.sink:MqttSink"),
    Entry(KafkaSinkConfig, f"{_C}.kafka.sink:KafkaSink"),
    # --- Postgres sinks (F3) ---
    Entry(PostgresSinkConfig, f"{_C}.postgres.sink:PostgresTableSink"),
)

STEPS: Final[tuple[Entry, ...]] = (
    Entry(FunctionStepConfig, f"{_S}.ai:FunctionStep"),
    Entry(ChatStepConfig, f"{_S}.ai:ChatStep"),
    Entry(EmbedStepConfig, f"{_S}.ai:EmbedStep"),
    Entry(ClassifyStepConfig, f"{_S}.ai:ClassifyStep"),
    Entry(MaskStepConfig, f"{_S}.mask:MaskStep"),
    Entry(UnmaskStepConfig, f"{_S}.mask:UnmaskStep"),
    Entry(MapStepConfig, f"{_S}.transform:MapStep"),
    Entry(FilterStepConfig, f"{_S}.transform:FilterStep"),
    Entry(RouteStepConfig, f"{_S}.transform:RouteStep"),
    Entry(DedupeStepConfig, f"{_S}.dedupe:DedupeStep"),
    Entry(BatchStepConfig, f"{_S}.batch:BatchStep"),
    # --- enrich (F3) ---
    Entry(EnrichStepConfig, f"{_S}.enrich:EnrichStep"),
)


def entry_for(entries: tuple[Entry, ...], config: BaseModel) -> Entry:
    """The entry whose config model ``config`` is (the config validated against it)."""
    for entry in entries:
        if type(config) is entry.config:
            return entry
    msg = f"no flow connector or step is registered for {type(config).__name__}"
    raise LookupError(msg)
