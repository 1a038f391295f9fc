"""The unit a flow moves: one message, and the handle that acknowledges it at its source.

A source turns what it receives (a JetStream message, a RabbitMQ delivery, a Redis Streams entry, a
Postgres change, a webhook event, a line of a file) into a :class:`Message` wrapped in a
:class:`Delivery`. The engine acknowledges the delivery only after every sink confirmed the message's
outputs (or a dead-letter destination took it): until then the source still owns it, and a crash
means redelivery, never loss.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["Delivery", "Message", "header_map"]


@dataclass(slots=True, kw_only=True)
class Message:
    """One event: a JSON-like payload with its identity, key and headers."""

    id: str
    """Unique per source message and stable across redeliveries (stream sequence, message id, LSN and
    row, file and line …): what idempotent sinks and dedupe windows key on."""
    payload: Any
    """Decoded JSON (usually a dict); a source that receives non-JSON bytes gives ``{"data": "<text>"}``
    or ``{"data_base64": …}`` and says so in its docs."""
    key: str | None = None
    """Partition / ordering key (Kafka key, MQTT topic, row primary key …), when the source has one."""
    headers: dict[str, str] = field(default_factory=dict)
    """Transport headers (``traceparent`` is carried through to sinks and AI calls)."""
    source: str = ""
    """The source's name (``nats:orders``, ``postgres-cdc:public.tickets`` …)."""
    position: str | None = None
    """The source position of this message (stream sequence, LSN …), stored by transactional sinks
    together with the output so a replay never double-applies."""
    attributes: dict[str, Any] = field(default_factory=dict)
    """Metadata the steps add (e.g. the ``route`` step's chosen sink); never sent to sinks as payload."""

    def derive(self, payload: Any, **changes: Any) -> Message:
        """A message produced from this one by a step: same identity and headers, a new payload."""
        values: dict[str, Any] = {
            "id": self.id,
            "payload": payload,
            "key": self.key,
            "headers": dict(self.headers),
            "source": self.source,
            "position": self.position,
            "attributes": dict(self.attributes),
        }
        values.update(changes)
        return Message(**values)


class Delivery(Protocol):
    """A message as received, still owned by its source until acknowledged."""

    @property
    def message(self) -> Message: ...

    @property
    def redelivered(self) -> bool:
        """True when the source knows it delivered this message before (a crash, a nack, a lease)."""
        ...

    async def ack(self) -> None:
        """Every sink confirmed it: the source may forget it (commit the offset, confirm the LSN …)."""
        ...

    async def nack(self, *, requeue: bool = True) -> None:
        """Not processed: redeliver later (``requeue``), or drop it to the source's own dead letters."""
        ...


def header_map(headers: Mapping[str, Any] | None) -> dict[str, str]:
    """Transport headers as plain strings (bytes decoded as UTF-8, others ``str()``-ed)."""
    result: dict[str, str] = {}
    for name, value in (headers or {}).items():
        result[str(name)] = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
    return result
