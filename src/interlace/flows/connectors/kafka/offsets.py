"""Which offset a Kafka consumer may commit when confirmations arrive out of order.

Kafka remembers one position per partition, so the consumer may commit only up to the first record
not yet confirmed: the highest *contiguous* confirmed offset + 1. Records are tracked in the order they
were handed out (offsets may have gaps: compaction, transaction markers), so "contiguous" means "every
record handed out before it is confirmed", not "offset - 1 is confirmed". A rewind (a nack: seek back
to redeliver) forgets everything handed out from that offset on; a late confirmation of a forgotten
record changes nothing.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

__all__ = ["Handed", "PartitionOffsets"]


@dataclass(eq=False, slots=True)
class Handed:
    """One record handed out (identity matters: a redelivered copy is another ``Handed``)."""

    offset: int
    done: bool = False


@dataclass(slots=True)
class PartitionOffsets:
    _handed: deque[Handed] = field(default_factory=deque)
    high: int = -1
    """The highest offset ever handed out (a lower one handed again is a redelivery)."""

    def hand(self, offset: int) -> Handed:
        record = Handed(offset)
        self._handed.append(record)
        self.high = max(self.high, offset)
        return record

    def confirm(self, record: Handed) -> int | None:
        """Mark ``record`` confirmed; the offset to commit now, or None when the commit point did not move."""
        if record.done or not any(r is record for r in self._handed):
            return None
        record.done = True
        commit: int | None = None
        while self._handed and self._handed[0].done:
            commit = self._handed.popleft().offset + 1
        return commit

    def rewind(self, offset: int) -> None:
        """Forget what was handed out from ``offset`` on: it will be fetched (and handed out) again."""
        self._handed = deque(r for r in self._handed if r.offset < offset)

    @property
    def outstanding(self) -> int:
        return sum(1 for r in self._handed if not r.done)
