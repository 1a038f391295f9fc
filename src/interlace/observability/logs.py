"""Structured logs: one line per finished request, and the process's log output.

:class:`RequestLog` is a :class:`~interlace.observability.observer.RequestObserver` that writes ONE
line per request to the ``interlace.requests`` logger, rendered as JSON (or ``key=value`` for
``format: console``; :mod:`interlace.observability.log_format`): request and trace id, tenant,
requested and served model, deployment, status, error code, latency, time to first token, tokens,
cost, attempts, fallback, stream and partial. Prompt and completion text appear only with
``include_content``, and then only what the record carries. When the logger is not enabled for INFO
the observer costs one check.

:func:`configure_logging` is for ``interlace serve`` start-up (nothing is configured at import, and
tests keep pytest's logging): every stdlib record — Interlace's, uvicorn's — is rendered in the
configured format, request lines as they are, and written to stderr in batches by one
background thread (:class:`LineWriter`), so a slow terminal or pipe never stalls the event loop. ::

    observability:
      logs:
        request_log: true        # one line per request
        include_content: false   # never prompt or completion text unless true
        format: json             # or console
"""

from __future__ import annotations

import logging
import queue
import sys
import threading
from typing import TYPE_CHECKING, Any, Final, TextIO

from interlace.observability.log_format import LineFormatter, UtcClock, renderer
from interlace.observability.observer import RequestObserver

if TYPE_CHECKING:
    from interlace.config.schema import LogsConfig
    from interlace.observability.record import RequestRecord

__all__ = ["REQUEST_LOGGER", "LineWriter", "LogOutput", "RequestLog", "configure_logging", "request_fields"]

REQUEST_LOGGER: Final = "interlace.requests"
"""The logger request lines are written to (at INFO)."""

_MAX_NAME: Final = 128  # a client-chosen model name is clipped in the log line


def request_fields(record: RequestRecord, *, include_content: bool = False) -> dict[str, Any]:
    """The fields of a request's log line (``include_content`` adds the text the record carries)."""
    usage = record.usage
    requested = record.requested_model
    fields: dict[str, Any] = {
        "request_id": record.request_id,
        "trace_id": record.trace_id,
        "tenant": record.tenant,
        "api_key_id": record.api_key_id,
        "operation": record.operation,
        "endpoint": record.endpoint,
        "model": requested[:_MAX_NAME] if requested is not None else None,
        "served_model": record.served_model,
        "deployment": record.deployment,
        "provider": record.provider,
        "status": record.status,
        "error_code": record.error_code,
        "latency_ms": round(record.duration_s * 1000, 3),
        "ttft_ms": round(record.ttft_s * 1000, 3) if record.ttft_s is not None else None,
        "stream": record.stream,
        "partial": record.partial,
        "attempts": record.attempts,
        "fallback": record.fallback,
        "recovered": record.recovered,
        "rule": record.rule,
        "input_tokens": usage.prompt_tokens,
        "output_tokens": usage.completion_tokens,
        "cached_tokens": usage.cached_tokens,
        "reasoning_tokens": usage.reasoning_tokens,
        "tokens_estimated": usage.estimated,
        "cost_usd": record.cost_usd,
        "confidence": record.confidence,
    }
    if record.shadow:
        fields["shadow"] = True
    if include_content:
        if record.prompt is not None:
            fields["prompt"] = record.prompt
        if record.completion is not None:
            fields["completion"] = record.completion
    return fields


class LineWriter(logging.Handler):
    """Writes lines to a stream from a background thread, in batches; :meth:`write` never blocks.

    The thread wakes every ``interval`` seconds and writes everything queued in one call: queueing a
    line never wakes it (a wake-up per line — a futex round trip and a hand-over of the GIL from the
    event loop — cost ~100 µs of CPU a request, ten times the rest of the request log). As a logging
    handler it writes each record's formatted message as one line.
    """

    def __init__(self, stream: TextIO, *, interval: float = 0.1) -> None:
        super().__init__()
        self._stream = stream
        self._interval = interval
        self._lines: queue.SimpleQueue[str] = queue.SimpleQueue()
        self._closing = threading.Event()
        self._thread = threading.Thread(target=self._run, name="interlace-log-writer", daemon=True)
        self._thread.start()

    def write(self, line: str) -> None:
        """Queue one line (without its newline)."""
        self._lines.put(line)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._lines.put(self.format(record))
        except Exception:
            self.handleError(record)

    def close(self) -> None:
        """Write everything queued, then stop the thread."""
        self._closing.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)
        super().close()

    def _run(self) -> None:
        while not self._closing.wait(self._interval):
            self._drain()
        self._drain()

    def _drain(self) -> None:
        lines = self._lines
        batch: list[str] = []
        while True:
            try:
                batch.append(lines.get_nowait())
            except queue.Empty:
                break
        if batch:
            try:
                self._stream.write("".join(f"{line}\n" for line in batch))
                self._stream.flush()
            except (OSError, ValueError):  # a closed or broken stream: there is nowhere else to write
                pass


class _Forward(logging.Handler):
    """Formats a record on the logging thread and hands the line to a :class:`LineWriter`."""

    def __init__(self, writer: LineWriter) -> None:
        super().__init__()
        self._writer = writer

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._writer.write(self.format(record))
        except Exception:
            self.handleError(record)


class _Sink:
    """Where the request log's rendered lines go: straight to the line writer that
    :func:`configure_logging` gave the request logger, else through that stdlib logger (so pytest's
    ``caplog`` and an embedding application's handlers see them)."""

    __slots__ = ("_logger", "name")

    def __init__(self, logger: logging.Logger) -> None:
        self._logger = logger
        self.name = logger.name

    def info(self, line: str) -> None:
        logger = self._logger
        handlers = logger.handlers
        if len(handlers) == 1 and not logger.propagate and isinstance(handlers[0], LineWriter):
            handlers[0].write(line)  # no LogRecord, no formatting: the line is rendered already
        else:
            logger.info(line)


class RequestLog(RequestObserver):
    """Writes one line per finished request to ``interlace.requests`` (see the module's notes).

    The line's event dict is built once, in its final key order, and rendered directly (a structured
    logger's bound context would copy its ~30 keys four times over: about 8 µs a request).
    """

    def __init__(
        self,
        *,
        include_content: bool = False,
        format: str = "json",  # noqa: A002 - the config key's name
        logger: logging.Logger | None = None,
    ) -> None:
        self._logger = logger or logging.getLogger(REQUEST_LOGGER)
        self._include_content = include_content
        self._sink = _Sink(self._logger)
        self._render = renderer(format)
        self._clock = UtcClock()

    @classmethod
    def from_config(cls, config: LogsConfig) -> RequestLog:
        return cls(include_content=config.include_content, format=config.format)

    def observe(self, record: RequestRecord) -> None:
        if not self._logger.isEnabledFor(logging.INFO):
            return
        event = {
            "timestamp": self._clock.now(),
            "level": "info",
            "logger": self._sink.name,
            "event": "request",
        }
        event.update(request_fields(record, include_content=self._include_content))
        self._sink.info(self._render(event))


class LogOutput:
    """What :func:`configure_logging` installed; :meth:`close` writes what is queued and removes it."""

    def __init__(self, writer: LineWriter, forward: logging.Handler, saved: tuple[int, bool]) -> None:
        self._writer = writer
        self._forward = forward
        self._saved = saved

    def close(self) -> None:
        root, requests = logging.getLogger(), logging.getLogger(REQUEST_LOGGER)
        root.removeHandler(self._forward)
        requests.removeHandler(self._writer)
        root.setLevel(self._saved[0])
        requests.propagate = self._saved[1]
        self._writer.close()


def configure_logging(
    config: LogsConfig, *, stream: TextIO | None = None, level: int = logging.INFO
) -> LogOutput:
    """Render every log record to ``stream`` (stderr), written by a background thread.

    Request lines (already rendered by :class:`RequestLog`) go to the writer as they are; every other
    record is rendered on its own thread in ``config.format`` (timestamp, level, logger, event and any
    exception), then handed to the same writer, so lines never interleave.
    """
    writer = LineWriter(stream if stream is not None else sys.stderr)
    forward = _Forward(writer)
    forward.setFormatter(LineFormatter(renderer(config.format)))
    root, requests = logging.getLogger(), logging.getLogger(REQUEST_LOGGER)
    saved = (root.level, requests.propagate)
    root.addHandler(forward)
    root.setLevel(level)
    requests.addHandler(writer)
    requests.propagate = False
    return LogOutput(writer, forward, saved)
