"""The YAML sections of a Redis Streams source and sink.

.. code-block:: yaml

    source:
      type: redis-streams
      url: redis://127.0.0.1:6379/0
      stream: tickets
      group: triage             # every `interlace flow run` joins the group (scale-out)
      claim_idle: 30            # take over a dead consumer's entries idle this long
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from interlace.config._flow_parts import ConnectorConfig

__all__ = ["RedisStreamSinkConfig", "RedisStreamSourceConfig"]


class RedisStreamSourceConfig(ConnectorConfig):
    type: Literal["redis-streams"] = "redis-streams"
    url: str = "redis://127.0.0.1:6379/0"
    stream: str
    group: str
    """The consumer group (created, with the stream, when missing)."""
    consumer: str | None = None
    """This process's consumer name; default ``<hostname>-<pid>``. A fixed name resumes its own
    pending entries at start; another name's entries are taken over after ``claim_idle``."""
    start_id: str = "0"
    """Where a newly created group starts: ``0`` (the whole stream) or ``$`` (new entries only)."""
    claim_idle: float = Field(default=30.0, gt=0)
    """Seconds an entry stays pending on a consumer before another one takes it over (XAUTOCLAIM)."""
    claim_interval: float = Field(default=10.0, gt=0)
    """Seconds between pending-entry recovery passes (one runs at start)."""
    block: float = Field(default=1.0, gt=0)
    """Seconds one XREADGROUP waits for new entries."""


class RedisStreamSinkConfig(ConnectorConfig):
    type: Literal["redis-streams"] = "redis-streams"
    url: str = "redis://127.0.0.1:6379/0"
    stream: str
    maxlen: int | None = Field(default=None, ge=1)
    """Trim the stream to about this many entries (``MAXLEN ~``)."""
    dedupe_ttl: int = Field(default=86_400, ge=1)
    """Seconds a written ``Message.id`` is remembered, so a redelivered message is not added twice."""
