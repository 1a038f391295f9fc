"""Unique ids: random ones, and the sortable ones indexed where they are stored."""

from __future__ import annotations

import time

from interlace.core.ids import sortable_hex, unique_hex
from interlace.gateway.middleware.request_id import new_request_id
from interlace.observability.record import RequestRecord
from interlace.security.audit.entry import audit_body


def test_sortable_ids_are_hex_of_the_asked_length_and_unique() -> None:
    ids = [sortable_hex() for _ in range(10_000)]
    assert len(set(ids)) == len(ids)
    assert all(len(i) == 32 and int(i, 16) >= 0 and i == i.lower() for i in ids)
    assert len(sortable_hex(96)) == 24
    assert len(unique_hex(96)) == 24


def test_sortable_ids_begin_with_the_milliseconds_so_later_ones_sort_after() -> None:
    before = time.time_ns() // 1_000_000
    first = sortable_hex()
    time.sleep(0.003)
    second = sortable_hex()
    after = time.time_ns() // 1_000_000
    assert first < second
    assert before <= int(first[:12], 16) <= int(second[:12], 16) <= after


def test_request_event_and_audit_entry_ids_are_sortable() -> None:
    earlier = [new_request_id(), _record().event_id, str(audit_body(_record(), content="none")["entry_id"])]
    time.sleep(0.003)
    later = [new_request_id(), _record().event_id, str(audit_body(_record(), content="none")["entry_id"])]
    assert all(a < b for a, b in zip(earlier, later, strict=True))


def _record() -> RequestRecord:
    return RequestRecord(
        request_id="r",
        operation="chat",
        endpoint="/v1/chat/completions",
        started_at=0.0,
        duration_s=0.1,
        status=200,
    )
