"""The fault model of the fake upstreams: what can go wrong, how it is chosen, what was received.

The servers in :mod:`interlace.testing` are honest fakes of the *upstream boundary*: real HTTP servers
on 127.0.0.1 that speak the providers' wire protocols (status lines, JSON bodies, SSE framing, error
shapes, connection drops), so the gateway's real adapters, pools, timeouts and translations are what
gets tested. They are not mocks of Interlace code, and nothing in production imports them.

A :class:`Fault` describes how one response misbehaves. It is chosen per model request (chat,
embeddings, messages, infer; discovery and health endpoints are never faulted, so background probes
cannot consume a script), first match wins:

1. the app's :class:`FaultScript` -- ``server.script.push(Fault(kind="refuse"), times=2)``, FIFO;
2. a directive in the requested model name (the body's ``model``, the Azure deployment or the v2
   model in the path) -- ``"fault:status=429,retry_after=2"``; any other name is served normally;
3. the app's ``default_fault`` (normal unless configured, e.g. a benchmark upstream's latency).

Directive grammar (values cannot contain ``,`` or ``=``)::

    directive := "fault:" item ("," item)*
    item      := key ["=" value]
    kind key  := status=<400..599> | refuse | slow_headers=<seconds> | malformed[=truncated|text]
               | cut_stream=<chunks> | stall_stream=<chunks> | error_after_first_chunk | none
    parameter := retry_after=<seconds> | code=<error code> | message=<text> | seconds=<seconds>
               | latency_ms=<ms> | chunk_interval_ms=<ms>

At most one kind key; without one the kind is ``none`` (``"fault:latency_ms=50"``), or ``status`` when a
``code`` is given (``"fault:code=context_length_exceeded"`` is a 400). Kinds, on the wire:

- ``status``: that HTTP status with the protocol's error body (``code`` selects e.g. OpenAI's
  ``context_length_exceeded`` or ``content_filter``) and ``Retry-After`` when ``retry_after`` is set.
- ``refuse``: the connection is dropped without any response.
- ``slow_headers``: nothing for ``seconds``, then a normal response.
- ``malformed``: 200 whose body is truncated JSON (or, with ``text``, an HTML page); for a stream, the
  first event's data is truncated JSON — or, with ``chunks``, one malformed event is slipped in after
  ``chunks`` good ones and the stream goes on to its normal end.
- ``cut_stream``: ``chunks`` stream events, then the connection is dropped (no terminator, no final
  HTTP chunk). A non-stream response sends half its declared body, then drops.
- ``stall_stream``: ``chunks`` stream events, silence for ``seconds``, then the rest. A non-stream
  response stalls after half its body.
- ``error_after_first_chunk``: one event, then the protocol's in-stream error event, then the body
  ends. A non-stream request gets a 500 error instead.

``latency_ms`` delays every response before its headers; ``chunk_interval_ms`` spaces stream events.
While the server waits it watches the connection: a client that goes away is recorded
(:attr:`RecordedRequest.disconnected`, :attr:`RequestJournal.disconnects`) and the response abandoned.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final, Literal, cast, get_args

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

__all__ = [
    "DIRECTIVE_PREFIX",
    "NORMAL",
    "Fault",
    "FaultDirectiveError",
    "FaultKind",
    "FaultScript",
    "RecordedRequest",
    "RequestJournal",
    "parse_fault_directive",
]

FaultKind = Literal[
    "none",
    "status",
    "refuse",
    "slow_headers",
    "malformed",
    "cut_stream",
    "stall_stream",
    "error_after_first_chunk",
]
_KINDS: Final[frozenset[str]] = frozenset(get_args(FaultKind))
DIRECTIVE_PREFIX: Final = "fault:"

# Optional fields and the kinds they mean something for: anything else is a mistake worth naming.
_APPLIES: Final[Mapping[str, frozenset[str]]] = MappingProxyType(
    {
        "status": frozenset({"status"}),
        "retry_after": frozenset({"status"}),
        "code": frozenset({"status", "error_after_first_chunk"}),
        "message": frozenset({"status", "error_after_first_chunk"}),
        "seconds": frozenset({"slow_headers", "stall_stream"}),
        "chunks": frozenset({"cut_stream", "stall_stream", "malformed"}),
        "body": frozenset({"malformed"}),
    }
)
_CODE_STATUS: Final[Mapping[str, int]] = MappingProxyType(
    {"context_length_exceeded": 400, "content_filter": 400, "rate_limit_exceeded": 429}
)
_MIN_STATUS, _MAX_STATUS = 400, 599


class FaultDirectiveError(ValueError):
    """A ``fault:`` model name that does not parse; the message says what to write instead."""


@dataclass(frozen=True, kw_only=True, slots=True)
class Fault:
    """How one upstream response misbehaves; ``Fault()`` is normal behaviour."""

    kind: FaultKind = "none"
    #: HTTP status of a ``status`` fault; defaults from ``code`` (400 for context/content errors), else 500.
    status: int | None = None
    #: ``Retry-After`` seconds sent with a ``status`` fault.
    retry_after: float | None = None
    #: Error code/type in the protocol's error body (``context_length_exceeded``, ``content_filter``, ...).
    code: str | None = None
    #: Error message; the protocol's usual wording when omitted.
    message: str | None = None
    #: Silence of ``slow_headers`` / ``stall_stream``.
    seconds: float | None = None
    #: Stream events sent before ``cut_stream`` / ``stall_stream`` strikes.
    chunks: int | None = None
    #: What a ``malformed`` body is: ``truncated`` JSON (default) or ``text`` (an HTML page).
    body: Literal["truncated", "text"] | None = None
    #: Delay before the response headers, for every kind.
    latency_ms: int = 0
    #: Delay between stream events.
    chunk_interval_ms: int = 0

    def __post_init__(self) -> None:
        if self.kind not in _KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; expected one of {', '.join(sorted(_KINDS))}")
        for name, kinds in _APPLIES.items():
            if getattr(self, name) is not None and self.kind not in kinds:
                raise ValueError(
                    f"'{name}' does not apply to a {self.kind!r} fault (only to {', '.join(kinds)})"
                )
        if self.kind in {"slow_headers", "stall_stream"} and self.seconds is None:
            raise ValueError(f"a {self.kind!r} fault needs seconds, e.g. seconds=2")
        if self.kind in {"cut_stream", "stall_stream"} and self.chunks is None:
            raise ValueError(f"a {self.kind!r} fault needs the number of chunks to send first, e.g. chunks=3")
        self._check_values()

    def _check_values(self) -> None:
        if self.status is not None and not _MIN_STATUS <= self.status <= _MAX_STATUS:
            raise ValueError(f"status must be an HTTP error status (400-599), got {self.status}")
        for name in ("retry_after", "seconds"):
            value = getattr(self, name)
            if value is not None and not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be a finite number of seconds >= 0, got {value}")
        for name in ("chunks", "latency_ms", "chunk_interval_ms"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ValueError(f"{name} must be >= 0, got {value}")
        if self.body not in {None, "truncated", "text"}:
            raise ValueError(f"body of a malformed fault is 'truncated' or 'text', got {self.body!r}")
        if self.code == "" or self.message == "":
            raise ValueError("code and message must not be empty")

    @property
    def http_status(self) -> int:
        """The status an error response for this fault carries."""
        if self.status is not None:
            return self.status
        return _CODE_STATUS.get(self.code or "", 500)

    @property
    def delay(self) -> float:
        """Seconds of silence before the response headers."""
        slow = (self.seconds or 0.0) if self.kind == "slow_headers" else 0.0
        return self.latency_ms / 1000 + slow


NORMAL: Final = Fault()

_KIND_KEYS: Final = MappingProxyType(  # kind key -> the field its value sets
    {
        "status": "status",
        "slow_headers": "seconds",
        "malformed": "body",
        "cut_stream": "chunks",
        "stall_stream": "chunks",
        "refuse": "",
        "error_after_first_chunk": "",
        "none": "",
    }
)
_BARE_KINDS: Final = frozenset({"refuse", "error_after_first_chunk", "none", "malformed"})
_INT_FIELDS: Final = frozenset({"status", "chunks", "latency_ms", "chunk_interval_ms"})
_FLOAT_FIELDS: Final = frozenset({"retry_after", "seconds"})
_PARAM_KEYS: Final = frozenset(
    {"retry_after", "code", "message", "seconds", "latency_ms", "chunk_interval_ms"}
)


def parse_fault_directive(model: str) -> Fault | None:
    """The fault a model name asks for, or ``None`` when it is not a ``fault:`` directive.

    Raises :class:`FaultDirectiveError` naming the offending item and what would be valid.
    """
    if not model.startswith(DIRECTIVE_PREFIX):
        return None

    def fail(why: str) -> FaultDirectiveError:
        return FaultDirectiveError(f"Invalid fault directive {model!r}: {why}.")

    spec = model.removeprefix(DIRECTIVE_PREFIX).strip()
    if not spec:
        raise fail("it is empty; write e.g. 'fault:status=503' or 'fault:cut_stream=3'")
    kind: str | None = None
    fields: dict[str, Any] = {}
    for item in spec.split(","):
        key, has_value, raw = (part.strip() for part in item.partition("="))
        target, value = _parse_item(key, raw if has_value else None, fail)
        if key in _KIND_KEYS:
            if kind is not None:
                raise fail(f"it names two kinds, {kind!r} and {key!r}; use one")
            kind = key
        if target is None:
            continue
        if target in fields:
            raise fail(f"{target!r} is given twice")
        fields[target] = value
    try:
        return Fault(kind=cast("FaultKind", kind or ("status" if "code" in fields else "none")), **fields)
    except ValueError as exc:
        raise fail(str(exc)) from None


def _parse_item(
    key: str, raw: str | None, fail: Callable[[str], FaultDirectiveError]
) -> tuple[str | None, object]:
    """The field one ``key[=raw]`` item sets and its value; no field for a bare kind."""
    if key not in _KIND_KEYS and key not in _PARAM_KEYS:
        raise fail(f"unknown item {key!r}; known items are {', '.join([*_KIND_KEYS, *sorted(_PARAM_KEYS)])}")
    target = _KIND_KEYS.get(key, key)
    if raw is None:
        if key in _BARE_KINDS:
            return None, None
        raise fail(f"{key!r} needs a value, e.g. '{key}=3'")
    if not target:
        raise fail(f"{key!r} takes no value")
    if not raw:
        raise fail(f"{key!r} needs a value, e.g. '{key}=3'")
    try:
        if target in _INT_FIELDS:
            return target, int(raw)
        if target in _FLOAT_FIELDS:
            return target, float(raw)
    except ValueError:
        wanted = "a whole number" if target in _INT_FIELDS else "a number of seconds"
        raise fail(f"{key!r} needs {wanted}, got {raw!r}") from None
    return target, raw


class FaultScript:
    """Faults queued for the next model requests, FIFO; thread-safe (tests push, the server pops)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queue: deque[list[Any]] = deque()  # [fault, uses left]

    def push(self, fault: Fault, *, times: int = 1) -> None:
        """Apply ``fault`` to the next ``times`` model requests (after anything queued before)."""
        if times < 1:
            raise ValueError(f"times must be >= 1, got {times}")
        with self._lock:
            self._queue.append([fault, times])

    def clear(self) -> None:
        """Forget everything queued; normal behaviour resumes at once."""
        with self._lock:
            self._queue.clear()

    def pop(self) -> Fault | None:
        """Consume one use of the next queued fault; ``None`` when the script is empty."""
        with self._lock:
            if not self._queue:
                return None
            entry = self._queue[0]
            entry[1] -= 1
            if entry[1] == 0:
                self._queue.popleft()
            return cast("Fault", entry[0])

    def __len__(self) -> int:
        """Uses left in the script."""
        with self._lock:
            return sum(cast("int", entry[1]) for entry in self._queue)


@dataclass(frozen=True, kw_only=True, slots=True)
class RecordedRequest:
    """One request as the upstream received it."""

    method: str
    path: str
    #: Decoded query parameters (last value wins).
    query: Mapping[str, str]
    #: Header names lower-cased; repeated headers joined with ", ".
    headers: Mapping[str, str]
    #: The parsed JSON body; ``None`` when empty or not JSON (see ``raw_body``).
    body: Any
    raw_body: bytes
    #: The fault this request was answered with.
    fault: Fault
    received_at: float = field(default_factory=time.time)
    _gone: threading.Event = field(default_factory=threading.Event, init=False, repr=False, compare=False)

    @property
    def disconnected(self) -> bool:
        """Whether the client went away before the response was complete."""
        return self._gone.is_set()


class RequestJournal:
    """Every request an upstream received, and the client disconnects it saw; thread-safe.

    ``limit`` keeps only the latest requests (a long benchmark must not grow without bound); ``0``
    keeps none, while :attr:`received` and :attr:`disconnects` still count.
    """

    def __init__(self, limit: int | None = None) -> None:
        self._changed = threading.Condition()
        self._requests: deque[RecordedRequest] = deque(maxlen=limit)
        self._received = 0
        self._disconnects = 0

    def record(self, request: RecordedRequest) -> None:
        with self._changed:
            self._requests.append(request)
            self._received += 1
            self._changed.notify_all()

    def mark_disconnected(self, request: RecordedRequest) -> None:
        with self._changed:
            if not request.disconnected:
                request._gone.set()  # noqa: SLF001 - the journal owns the flag
                self._disconnects += 1
                self._changed.notify_all()

    @property
    def requests(self) -> list[RecordedRequest]:
        """A snapshot, oldest first."""
        with self._changed:
            return list(self._requests)

    @property
    def received(self) -> int:
        """How many requests arrived since the last :meth:`clear`, kept or not."""
        with self._changed:
            return self._received

    @property
    def disconnects(self) -> int:
        """How many clients went away mid-response (during a delay, a stall or a stream)."""
        with self._changed:
            return self._disconnects

    def clear(self) -> None:
        with self._changed:
            self._requests.clear()
            self._received = self._disconnects = 0

    def wait_for_requests(self, count: int, timeout: float = 2.0) -> list[RecordedRequest]:
        """Block until at least ``count`` requests arrived; the kept ones, or :class:`TimeoutError`."""
        with self._changed:
            if not self._changed.wait_for(lambda: self._received >= count, timeout):
                raise TimeoutError(f"expected {count} request(s) within {timeout}s, got {self._received}")
            return list(self._requests)

    def wait_for_disconnects(self, count: int, timeout: float = 2.0) -> int:
        """Block until at least ``count`` disconnects were seen; raises :class:`TimeoutError`."""
        with self._changed:
            if not self._changed.wait_for(lambda: self._disconnects >= count, timeout):
                raise TimeoutError(
                    f"expected {count} disconnect(s) within {timeout}s, saw {self._disconnects}"
                )
            return self._disconnects
