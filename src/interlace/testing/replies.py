"""Scripted chat replies for the fake upstreams: exact answer texts, queued FIFO.

The echo model answers what it is told; a test of *structured output* needs answers that are valid,
invalid then valid, or always invalid against a schema. ``server.app.replies.push(text, times=n)``
(on the OpenAI and Anthropic fakes) makes the next ``n`` chat completions or messages answer ``text``
verbatim (as the message content, streamed word by word like any echo reply; ``stop`` and
``max_tokens`` do not cut it); once the script is empty, the echo model answers again. Tool calls,
when a request asks for one, take precedence over the script.
"""

from __future__ import annotations

import threading
from collections import deque

__all__ = ["ReplyScript"]


class ReplyScript:
    """Reply texts queued for the next chat completions, FIFO; thread-safe (tests push, servers pop)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queue: deque[list[object]] = deque()  # [text, uses left]

    def push(self, text: str, *, times: int = 1) -> None:
        """Answer the next ``times`` chat completions with ``text`` (after anything queued before)."""
        if times < 1:
            raise ValueError(f"times must be >= 1, got {times}")
        with self._lock:
            self._queue.append([text, times])

    def clear(self) -> None:
        with self._lock:
            self._queue.clear()

    def pop(self) -> str | None:
        """Consume one use of the next queued reply; ``None`` when the script is empty."""
        with self._lock:
            if not self._queue:
                return None
            entry = self._queue[0]
            left = int(str(entry[1])) - 1
            entry[1] = left
            if left == 0:
                self._queue.popleft()
            return str(entry[0])

    def __len__(self) -> int:
        with self._lock:
            return sum(int(str(entry[1])) for entry in self._queue)
