"""How a log line reads: an event dict rendered as JSON (one object a line) or as ``key=value`` text.

Every line is an event dict: ``timestamp`` (ISO 8601 UTC with microseconds), ``level``, ``logger``,
``event`` and the event's own fields; a record with an exception adds ``exception`` (its traceback).
JSON keeps the dict's order; the console format reads::

    2026-12-01T12:00:00.000000Z [warning  ] disk /tmp full                 logger=interlace.example

(the event padded to 30 characters, then the other fields sorted by name, the traceback on the lines
after). Values that JSON cannot hold are written as their ``repr``. These few lines replace a logging
library whose import also loaded Rich and pygments into every server (~6 MiB of resident memory).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, Final

import orjson

__all__ = ["LineFormatter", "UtcClock", "render_console", "render_json", "renderer", "utc_timestamp"]

Renderer = Callable[[dict[str, Any]], str]

_FIRST: Final = ("timestamp", "level", "event")
_EVENT_WIDTH: Final = 30
_LEVEL_WIDTH: Final = len("critical") + 1


def utc_timestamp(moment: float) -> str:
    """``moment`` (UNIX seconds) as ``2026-12-01T12:00:00.000000Z``."""
    whole = int(moment)
    return (
        f"{time.strftime('%Y-%m-%dT%H:%M:%S', time.gmtime(whole))}.{int((moment - whole) * 1_000_000):06d}Z"
    )


class UtcClock:
    """Now as :func:`utc_timestamp` writes it; the date and time of day are formatted once a second."""

    __slots__ = ("_second",)

    def __init__(self) -> None:
        self._second = (-1, "")

    def now(self) -> str:
        now = time.time()
        whole = int(now)
        second, prefix = self._second
        if whole != second:
            prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole))
            self._second = (whole, prefix)
        return f"{prefix}.{int((now - whole) * 1_000_000):06d}Z"


def render_json(event: dict[str, Any]) -> str:
    return orjson.dumps(event, default=repr).decode()


def render_console(event: dict[str, Any]) -> str:
    timestamp, level, message = (event.get(name) for name in _FIRST)
    exception = event.get("exception")
    fields = " ".join(
        f"{name}={_plain(value)}"
        for name, value in sorted(event.items())
        if name not in _FIRST and name != "exception"
    )
    level, message = str(level or ""), str(message or "")
    line = f"{timestamp} [{level:<{_LEVEL_WIDTH}}] {message:<{_EVENT_WIDTH}} {fields}".rstrip()
    return f"{line}\n{exception}" if exception else line


def _plain(value: Any) -> str:
    return value if isinstance(value, str) else repr(value)


def renderer(format: str) -> Renderer:  # noqa: A002 - the config key's name
    """The renderer of ``observability.logs.format``: ``json`` or ``console``."""
    return render_console if format == "console" else render_json


class LineFormatter(logging.Formatter):
    """A stdlib record as one event dict, rendered (see the module's notes)."""

    def __init__(self, render: Renderer) -> None:
        super().__init__()
        self._render = render

    def format(self, record: logging.LogRecord) -> str:
        event: dict[str, Any] = {
            "event": record.getMessage(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "timestamp": utc_timestamp(record.created),
        }
        if record.exc_info:
            event["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            event["exception"] = record.exc_text
        return self._render(event)
