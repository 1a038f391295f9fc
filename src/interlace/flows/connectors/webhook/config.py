"""``source: {type: webhook}``: events POSTed to ``/v1/flows/{name}/events``, kept in the flow inbox."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from interlace.config._flow_parts import ConnectorConfig

__all__ = ["WebhookSourceConfig"]


class WebhookSourceConfig(ConnectorConfig):
    """The gateway answers 202 once the event is committed to the inbox; the flow leases it from there."""

    type: Literal["webhook"]
    lease: float = Field(
        60.0, gt=0, description="Seconds an event handed to a flow process stays invisible to others."
    )
    poll_interval: float = Field(0.5, gt=0, description="Seconds between inbox polls when it is empty.")
    key_field: str | None = Field(None, description="The payload field used as the message key.")
    max_event_bytes: int = Field(1024 * 1024, ge=1, description="Bodies over this answer 413.")
