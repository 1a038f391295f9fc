"""How log lines read: JSON in the event's order, the console's ``key=value`` text, tracebacks."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from decimal import Decimal

from interlace.observability.log_format import (
    LineFormatter,
    UtcClock,
    render_console,
    render_json,
    utc_timestamp,
)


def test_json_keeps_the_order_and_writes_what_it_cannot_hold_as_repr() -> None:
    line = render_json({"timestamp": "t", "level": "info", "event": "e", "price": Decimal("1.5"), "n": 3})
    assert list(json.loads(line)) == ["timestamp", "level", "event", "price", "n"]
    assert json.loads(line)["price"] == "Decimal('1.5')"
    assert json.loads(line)["n"] == 3


def test_console_pads_the_level_and_event_then_sorts_the_fields() -> None:
    line = render_console(
        {"timestamp": "2026-12-01T12:00:00.000000Z", "level": "info", "event": "request", "b": 2, "a": "x y"}
    )
    assert line == "2026-12-01T12:00:00.000000Z [info     ] request                        a=x y b=2"


def test_a_record_with_an_exception_carries_its_traceback() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.LogRecord(
            "interlace.x", logging.ERROR, __file__, 1, "failed %s", ("once",), sys.exc_info()
        )
    record.created = datetime(2026, 12, 1, 12, 0, 0, 250000, tzinfo=UTC).timestamp()
    event = json.loads(LineFormatter(render_json).format(record))
    assert (event["event"], event["level"], event["logger"]) == ("failed once", "error", "interlace.x")
    assert event["timestamp"] == "2026-12-01T12:00:00.250000Z"
    assert event["exception"].startswith("Traceback (most recent call last):")
    assert event["exception"].endswith("ValueError: boom")
    console = LineFormatter(render_console).format(record).splitlines()
    assert (
        console[0]
        == "2026-12-01T12:00:00.250000Z [error    ] failed once                    logger=interlace.x"
    )
    assert console[-1] == "ValueError: boom"


def test_the_clock_writes_now_in_the_format_of_utc_timestamp() -> None:
    written = UtcClock().now()
    parsed = datetime.strptime(written, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    assert abs(parsed.timestamp() - datetime.now(UTC).timestamp()) < 5
    assert len(written) == len(utc_timestamp(parsed.timestamp())) == len("2026-12-01T12:00:00.000000Z")
