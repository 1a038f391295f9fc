"""``sink: {type: http}``: an HTTP endpoint receiving each message as JSON."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from interlace.config._flow_parts import ConnectorConfig, RetryPolicy

__all__ = ["HttpSinkConfig"]


class HttpSinkConfig(ConnectorConfig):
    """One request per message (``Idempotency-Key`` is the message id, ``traceparent`` carried on)."""

    type: Literal["http"]
    url: str = Field(description="http:// or https:// URL.")
    method: Literal["POST", "PUT"] = "POST"
    headers: dict[str, str] = Field(default_factory=dict, description="Extra headers (${ENV} resolved).")
    timeout: float = Field(10.0, gt=0, description="Seconds per request.")
    retry: RetryPolicy = Field(
        default_factory=lambda: RetryPolicy(attempts=5), description="Retries of 408, 429, 5xx and errors."
    )
    body: Literal["payload", "envelope"] = Field(
        "payload", description="Send the payload, or {id, key, source, headers, payload}."
    )
