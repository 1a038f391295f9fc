"""``sink: {type: event_log}``: messages appended to the state database's ``flow_events`` table."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from interlace.config._flow_parts import ConnectorConfig

__all__ = ["EventLogSinkConfig"]


class EventLogSinkConfig(ConnectorConfig):
    """Idempotent by (stream, message id): a redelivered message is not appended twice."""

    type: Literal["event_log"]
    stream: str | None = Field(None, description="The log's stream name; default the flow's name.")
